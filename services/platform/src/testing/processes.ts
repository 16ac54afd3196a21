import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';

/** A free TCP port on loopback (closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningSystem {
  url: string;
  child: ChildProcess;
  /** Everything the process has printed so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Kills the process and everything it started (its process group): the cleanup for a system
   * whose own shutdown cannot be relied on, so no service outlives the test. Resolves once the
   * process has exited, so its files can be removed.
   */
  killAll(): Promise<void>;
}

/**
 * Starts an entrypoint (`main.ts` of the embedded or local system, or of the API) as a separate
 * process on a free port, and waits until its `/readyz` answers 200. `nodeArgs` go to Node before
 * the entrypoint (e.g. the V8 flags of `npm start`).
 */
export async function startSystem(
  main: string,
  env: Record<string, string>,
  timeoutInMs = 60_000,
  nodeArgs: readonly string[] = [],
): Promise<RunningSystem> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
    // With an IPC channel, the system stops when the test process dies (see onShutdown); in a
    // process group of its own, killAll reaches every process it starts.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const killAll = async (): Promise<void> => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${main} exited during startup:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await killAll();
      throw new Error(`${main} not ready after ${timeoutInMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, output: () => log, exited, killAll };
}

/**
 * Removes a directory a killed system wrote to. Its children die with it but not in the same
 * instant, so a last file may appear while the tree is being removed: retried, not failed.
 */
export const removeDir = (dir: string): Promise<void> =>
  rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
