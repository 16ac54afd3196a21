import type { Logger } from 'pino';

export interface ShutdownOptions {
  /** After this long, stop waiting for the drain and exit non-zero. @default 30000 */
  timeoutInMs?: number;
  /** Called instead of `process.exit` (tests). */
  exit?: (code: number) => void;
}

/**
 * On SIGTERM or SIGINT (or when the parent that started this process with an IPC channel exits),
 * runs the steps in order (stop intake, drain, close connections) and exits 0;
 * a second signal or the timeout exits 1. An unhandled rejection or uncaught exception is logged as
 * fatal, drains, and exits 1, so the orchestrator (Kubernetes) restarts the process.
 */
export function onShutdown(
  logger: Logger,
  steps: readonly (() => Promise<unknown>)[],
  options: ShutdownOptions = {},
): void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const timeoutInMs = options.timeoutInMs ?? 30_000;
  let stopping = false;

  const stop = async (reason: string, code: number): Promise<void> => {
    if (stopping) {
      logger.warn({ reason }, 'second stop request: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    logger.info({ reason, timeoutInMs }, 'shutting down: draining in-flight work');
    const timer = setTimeout(() => {
      logger.error({ timeoutInMs }, 'drain timed out: exiting');
      exit(1);
    }, timeoutInMs);
    timer.unref();
    let failed = false;
    for (const step of steps) {
      try {
        await step();
      } catch (e) {
        failed = true;
        logger.error({ err: e }, 'shutdown step failed');
      }
    }
    clearTimeout(timer);
    logger.info({ code: failed ? 1 : code }, 'stopped');
    exit(failed ? 1 : code);
  };

  process.once('SIGTERM', () => void stop('SIGTERM', 0));
  process.once('SIGINT', () => void stop('SIGINT', 0));
  // Started by a supervisor with an IPC channel (the local launcher, a test): when it goes away,
  // however it went, stop too rather than run on as an orphan.
  if (process.connected) process.once('disconnect', () => void stop('parent process exited', 0));
  process.on('unhandledRejection', (e) => {
    logger.fatal({ err: e }, 'unhandled rejection');
    void stop('unhandledRejection', 1);
  });
  process.on('uncaughtException', (e) => {
    logger.fatal({ err: e }, 'uncaught exception');
    void stop('uncaughtException', 1);
  });
}
