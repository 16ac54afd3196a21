import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@orch/platform/runtime';

export interface SupervisedProcess {
  readonly name: string;
  /** The running child's pid, if one is running. */
  readonly pid: number | undefined;
  /** Sends SIGTERM, waits for the exit (SIGKILL after `graceInMs`), and stops restarting. */
  stop(graceInMs: number): Promise<void>;
}

export interface SuperviseOptions {
  name: string;
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** First restart delay after a crash; doubles up to 30 s, and resets after a minute of uptime. */
  restartDelayInMs?: number;
}

const MAX_RESTART_DELAY_MS = 30_000;
const HEALTHY_UPTIME_MS = 60_000;

/**
 * Runs a service as a child process, as Kubernetes would: its output goes straight to ours, and a
 * crash is logged and followed by a restart with exponential backoff.
 */
export function supervise(options: SuperviseOptions): SupervisedProcess {
  const { name, logger } = options;
  const initialDelay = options.restartDelayInMs ?? 1_000;
  let delay = initialDelay;
  let child: ChildProcess | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = (): void => {
    const startedAt = Date.now();
    // The IPC channel closes when this process dies, however it dies (even SIGKILL): the child's
    // onShutdown sees the disconnect and drains, so no service outlives its launcher.
    const spawned = spawn(options.command, options.args, {
      env: options.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child = spawned;
    logger.info({ service: name, pid: spawned.pid }, `started ${name}`);
    exited = new Promise((resolve) => {
      spawned.once('exit', (code, signal) => {
        child = undefined;
        resolve();
        if (stopping) {
          logger.info({ service: name, code, signal }, `${name} stopped`);
          return;
        }
        if (Date.now() - startedAt > HEALTHY_UPTIME_MS) delay = initialDelay;
        logger.error({ service: name, code, signal, restartInMs: delay }, `${name} exited unexpectedly; restarting`);
        restartTimer = setTimeout(start, delay);
        delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
      });
    });
    spawned.once('error', (e) => logger.error({ service: name, err: e }, `${name} could not be started`));
  };

  start();

  return {
    name,
    get pid() {
      return child?.pid;
    },
    async stop(graceInMs) {
      stopping = true;
      clearTimeout(restartTimer);
      const running = child;
      if (!running) return;
      running.kill('SIGTERM');
      const killer = setTimeout(() => {
        logger.warn({ service: name, graceInMs }, `${name} did not stop in time; killing it`);
        running.kill('SIGKILL');
      }, graceInMs);
      await exited;
      clearTimeout(killer);
    },
  };
}
