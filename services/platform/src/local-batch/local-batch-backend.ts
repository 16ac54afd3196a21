import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { OrchestratorError, TASK_ID_ENV, TASK_POOL_ENV, TASK_SPEC_ENV, describeError } from '@orch/core';
import type { BatchBackend, BatchPool, BatchTaskSpec, BatchTaskState } from '@orch/core';
import type { Logger } from 'pino';

/** Environment variable that tells a task which pool it runs in. */
const BATCH_POOL_ENV = TASK_POOL_ENV;
/** Environment variable that carries the task's id. */

const POOLS: ReadonlySet<string> = new Set<BatchPool>(['ml', 'batch']);
const MAX_SPEC_BYTES = 1024 * 1024;
/**
 * Linux refuses (E2BIG) any single environment string longer than MAX_ARG_STRLEN (32 pages,
 * 128 KiB, counting `NAME=` and the terminating NUL), whatever the total size of the environment.
 */
const LINUX_MAX_ENV_STRING_BYTES = 128 * 1024;
const STDERR_TAIL_CHARS = 2048;
/** A line longer than this is logged in pieces, so a child that never writes a newline cannot grow a buffer forever. */
const MAX_LOG_LINE_CHARS = 16 * 1024;
/** After a child exits, how long to wait for its pipes to close (a grandchild may hold them open). */
const STDIO_DRAIN_IN_MS = 1000;

export interface LocalBatchBackendOptions {
  /** Executable and arguments of every task, e.g. `[process.execPath, '/abs/path/task-runner.ts']`. */
  command: readonly string[];
  /** Added to each child's environment, over `process.env`. */
  env?: Record<string, string>;
  /** Tasks running at once across all pools; the others wait, first in first out, as `pending`. @default 2 */
  maxConcurrentTasks?: number;
  /** A task running longer is killed and reported completed with a non-zero exit code. @default 1800000 (30 min) */
  taskTimeoutInMs?: number;
  /** How long `close()` lets running tasks finish before killing them. @default 10000 */
  closeGraceInMs?: number;
  /** Between SIGTERM and SIGKILL when a task is killed (timeout or close). @default 5000 */
  killGraceInMs?: number;
  /** How long a completed task's state stays known; after that it reads `unknown`. @default 600000 (10 min) */
  completedRetentionInMs?: number;
  /** At most this many completed tasks are remembered; the oldest are forgotten first. @default 10000 */
  maxRetainedCompletedTasks?: number;
  /** Receives lifecycle events and, at `debug`, every line the children write, tagged with `taskId`. */
  logger?: Logger;
}

interface TaskRecord {
  readonly pool: BatchPool;
  readonly id: string;
  readonly specJson: string;
  state: 'pending' | 'running' | 'completed';
  exitCode?: number;
  failure?: string;
  completedAt?: number;
  child?: ChildProcess;
  /** Why we are killing the child, if we are. */
  killReason?: 'timeout' | 'close';
  timers: NodeJS.Timeout[];
  /** Resolves once the task is completed. */
  readonly done: Promise<void>;
  readonly markDone: () => void;
}

/**
 * The embedded stand-in for Azure Batch: each task runs as a child process of this one.
 *
 * - At most `maxConcurrentTasks` children run at once across all pools; other tasks wait FIFO as
 *   `pending`. Task ids are scoped to their pool, as in Azure Batch where each pool has its own job.
 * - The child gets `process.env`, then `options.env`, then `ORCH_TASK_SPEC` (the spec as JSON, see
 *   `TASK_SPEC_ENV`), `ORCH_BATCH_POOL` and `ORCH_TASK_ID`. Its stdout and stderr lines are logged at
 *   `debug` with `{ taskId, pool, stream }`.
 * - A task completes with the child's exit code (a signal `n` reads as `128 + n`); when that is not 0,
 *   `failure` holds the tail (about 2 KB) of its stderr. A child that cannot be spawned completes with
 *   exit code -1 and the spawn error as `failure`. A task that outlives `taskTimeoutInMs` is sent
 *   SIGTERM, then SIGKILL `killGraceInMs` later, and completes with a non-zero code and
 *   `failure: 'task timed out after … ms'`.
 * - State lives in memory only: after a restart, or once a completed task is older than
 *   `completedRetentionInMs` (or beyond `maxRetainedCompletedTasks`), its id reads `unknown`, and
 *   submitting it again runs it again.
 * - `close()` starts nothing more, lets running children finish for `closeGraceInMs`, then kills them
 *   (SIGTERM, SIGKILL), and resolves once every child has exited; later submissions are refused.
 *   Children get a process group of their own (POSIX), so a kill reaches their own children too and a
 *   terminal's Ctrl+C reaches only this process, which then closes in order. If this process dies
 *   without `close()` (SIGKILL, crash), running children are not killed and may outlive it.
 *
 * @throws OrchestratorError `CONFIG_INVALID` when an option is out of range.
 */
export function createLocalBatchBackend(options: LocalBatchBackendOptions): BatchBackend {
  const [executable, ...args] = options.command;
  if (executable === undefined || executable === '') {
    throw new OrchestratorError('CONFIG_INVALID', 'local batch backend: command must name an executable');
  }
  const maxConcurrentTasks = integerOption('maxConcurrentTasks', options.maxConcurrentTasks, 2, 1);
  const taskTimeoutInMs = integerOption('taskTimeoutInMs', options.taskTimeoutInMs, 30 * 60_000, 1);
  const closeGraceInMs = integerOption('closeGraceInMs', options.closeGraceInMs, 10_000, 0);
  const killGraceInMs = integerOption('killGraceInMs', options.killGraceInMs, 5_000, 0);
  const retentionInMs = integerOption('completedRetentionInMs', options.completedRetentionInMs, 10 * 60_000, 0);
  const maxRetained = integerOption('maxRetainedCompletedTasks', options.maxRetainedCompletedTasks, 10_000, 1);
  const logger = options.logger;
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  const ownProcessGroup = process.platform !== 'win32';

  const tasks = new Map<BatchPool, Map<string, TaskRecord>>();
  const pending: TaskRecord[] = [];
  const running = new Set<TaskRecord>();
  /** Completed tasks, oldest first (a Map iterates in insertion order). */
  const completed = new Map<TaskRecord, true>();
  let closing: Promise<void> | undefined;

  const tasksOf = (pool: BatchPool): Map<string, TaskRecord> => {
    let byId = tasks.get(pool);
    if (!byId) tasks.set(pool, (byId = new Map<string, TaskRecord>()));
    return byId;
  };

  const prune = (): void => {
    const now = Date.now();
    for (const record of completed.keys()) {
      if (completed.size <= maxRetained && now - (record.completedAt ?? now) <= retentionInMs) break;
      completed.delete(record);
      tasks.get(record.pool)?.delete(record.id);
    }
  };

  const complete = (record: TaskRecord, exitCode: number, failure: string | undefined): void => {
    if (record.state === 'completed') return;
    for (const timer of record.timers) clearTimeout(timer);
    record.timers = [];
    running.delete(record);
    record.state = 'completed';
    record.exitCode = exitCode;
    record.failure = failure;
    record.completedAt = Date.now();
    // A grandchild may still hold the pipes open; let go of them so they keep nothing alive here.
    record.child?.stdout?.destroy();
    record.child?.stderr?.destroy();
    record.child = undefined;
    completed.set(record, true);
    const fields = { taskId: record.id, pool: record.pool, exitCode };
    if (exitCode === 0) logger?.info(fields, 'batch task completed');
    else logger?.warn({ ...fields, failure }, 'batch task failed');
    record.markDone();
    prune();
    startPending();
  };

  const signalChild = (child: ChildProcess, signal: NodeJS.Signals): void => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      if (ownProcessGroup && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // The group is already gone (ESRCH): the 'exit' event is on its way.
      child.kill(signal);
    }
  };

  const kill = (record: TaskRecord, reason: 'timeout' | 'close'): void => {
    const child = record.child;
    if (!child || record.killReason) return;
    record.killReason = reason;
    logger?.warn({ taskId: record.id, pool: record.pool, reason }, 'killing batch task');
    signalChild(child, 'SIGTERM');
    const escalate = setTimeout(() => signalChild(child, 'SIGKILL'), killGraceInMs);
    escalate.unref();
    record.timers.push(escalate);
  };

  const start = (record: TaskRecord): void => {
    record.state = 'running';
    running.add(record);
    const log = logger?.child({ taskId: record.id, pool: record.pool });
    let child: ChildProcess;
    try {
      child = spawn(executable, args, {
        env: { ...baseEnv, [TASK_SPEC_ENV]: record.specJson, [BATCH_POOL_ENV]: record.pool, [TASK_ID_ENV]: record.id },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: ownProcessGroup,
      });
    } catch (e) {
      // Some failures (E2BIG, EINVAL) throw synchronously instead of emitting 'error'.
      complete(record, -1, `could not start the task: ${describeError(e)}`);
      return;
    }
    record.child = child;
    log?.debug({ pid: child.pid }, 'batch task started');

    let stderrTail = '';
    forwardLines(child.stdout, (line) => log?.debug({ stream: 'stdout' }, line));
    forwardLines(
      child.stderr,
      (line) => log?.debug({ stream: 'stderr' }, line),
      (chunk) => {
        stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      },
    );

    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const settle = (): void => {
      if (!exit) return;
      let exitCode = exitCodeOf(exit.code, exit.signal);
      let failure: string | undefined;
      if (record.killReason === 'timeout') {
        if (exitCode === 0) exitCode = 124; // it caught SIGTERM and exited cleanly, but it did not finish in time
        failure = `task timed out after ${taskTimeoutInMs} ms`;
      } else if (exitCode !== 0) {
        const tail = stderrTail.trim();
        const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exitCode}`;
        failure = tail || (record.killReason === 'close' ? `${how}: the backend was closing` : how);
      }
      complete(record, exitCode, failure);
    };

    child.on('error', (e) => {
      if (child.pid === undefined) complete(record, -1, `could not start the task: ${describeError(e)}`);
      else log?.warn({ err: e }, 'batch task child process error');
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      for (const timer of record.timers) clearTimeout(timer);
      record.timers = [setTimeout(settle, STDIO_DRAIN_IN_MS)];
    });
    child.once('close', (code, signal) => {
      exit ??= { code, signal };
      settle();
    });

    const timeout = setTimeout(() => kill(record, 'timeout'), taskTimeoutInMs);
    timeout.unref();
    record.timers.push(timeout);
  };

  let starting = false;
  const startPending = (): void => {
    // A task that fails to spawn synchronously completes inside start() and calls back here: the outer loop carries on instead of recursing.
    if (starting) return;
    starting = true;
    try {
      while (!closing && running.size < maxConcurrentTasks) {
        const next = pending.shift();
        if (!next) return;
        start(next);
      }
    } finally {
      starting = false;
    }
  };

  return {
    kind: 'local',

    submitTasks(pool: BatchPool, specs: readonly BatchTaskSpec[]): Promise<void> {
      if (closing) {
        return Promise.reject(
          new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'local batch backend is closed', { retryable: true }),
        );
      }
      if (!POOLS.has(pool)) {
        return Promise.reject(new OrchestratorError('VALIDATION_FAILED', `unknown batch pool: ${String(pool)}`));
      }
      const byId = tasksOf(pool);
      const fresh = new Map<string, TaskRecord>();
      // Validate everything before starting anything, so a bad spec leaves no half-submitted call behind.
      for (const spec of specs) {
        if (typeof spec?.id !== 'string' || spec.id === '') {
          return Promise.reject(
            new OrchestratorError('VALIDATION_FAILED', 'a batch task spec needs a non-empty string id'),
          );
        }
        if (byId.has(spec.id) || fresh.has(spec.id)) continue;
        let specJson: string;
        try {
          specJson = JSON.stringify(spec);
        } catch (e) {
          return Promise.reject(
            new OrchestratorError('VALIDATION_FAILED', `task ${spec.id}: spec is not serializable as JSON`, {
              cause: e,
            }),
          );
        }
        const problem = specSizeProblem(specJson);
        if (problem) {
          return Promise.reject(new OrchestratorError('VALIDATION_FAILED', `task ${spec.id}: ${problem}`));
        }
        fresh.set(spec.id, newRecord(pool, spec.id, specJson));
      }
      for (const record of fresh.values()) {
        byId.set(record.id, record);
        pending.push(record);
      }
      if (fresh.size > 0) logger?.debug({ pool, taskIds: [...fresh.keys()] }, 'batch tasks submitted');
      startPending();
      return Promise.resolve();
    },

    getTaskStates(pool: BatchPool, taskIds: readonly string[]): Promise<Map<string, BatchTaskState>> {
      prune();
      const byId = tasks.get(pool);
      const states = new Map<string, BatchTaskState>();
      for (const id of taskIds) states.set(id, stateOf(byId?.get(id)));
      return Promise.resolve(states);
    },

    close(): Promise<void> {
      closing ??= (async () => {
        const children = [...running];
        if (children.length === 0) return;
        logger?.info(
          { tasks: children.length, closeGraceInMs },
          'closing local batch backend: waiting for running tasks',
        );
        const allDone = Promise.all(children.map((r) => r.done));
        let grace: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'grace-over'>((resolve) => {
          grace = setTimeout(() => resolve('grace-over'), closeGraceInMs);
        });
        if ((await Promise.race([allDone, graceOver])) === 'grace-over') {
          for (const record of running) kill(record, 'close');
          await allDone;
        }
        clearTimeout(grace);
      })();
      return closing;
    },
  };
}

function newRecord(pool: BatchPool, id: string, specJson: string): TaskRecord {
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  return { pool, id, specJson, state: 'pending', timers: [], done, markDone };
}

function stateOf(record: TaskRecord | undefined): BatchTaskState {
  if (!record) return { state: 'unknown' };
  if (record.state !== 'completed') return { state: record.state };
  return record.failure === undefined
    ? { state: 'completed', exitCode: record.exitCode ?? -1 }
    : { state: 'completed', exitCode: record.exitCode ?? -1, failure: record.failure };
}

function specSizeProblem(specJson: string): string | undefined {
  const bytes = Buffer.byteLength(specJson, 'utf8');
  if (bytes > MAX_SPEC_BYTES) return `spec is ${bytes} bytes; the limit is ${MAX_SPEC_BYTES} (1 MiB)`;
  const envBytes = Buffer.byteLength(`${TASK_SPEC_ENV}=`) + bytes + 1;
  if (process.platform === 'linux' && envBytes > LINUX_MAX_ENV_STRING_BYTES) {
    return (
      `spec is ${bytes} bytes; Linux limits one environment variable (${TASK_SPEC_ENV}) to ` +
      `${LINUX_MAX_ENV_STRING_BYTES - Buffer.byteLength(`${TASK_SPEC_ENV}=`) - 1} bytes, so the local backend cannot pass it`
    );
  }
  return undefined;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? (osConstants.signals as Partial<Record<NodeJS.Signals, number>>)[signal] : undefined;
  return n === undefined ? -1 : 128 + n;
}

/** Calls `onLine` for each line of `stream` (and `onChunk` for the raw text), always draining it so the child never blocks. */
function forwardLines(
  stream: Readable | null,
  onLine: (line: string) => void,
  onChunk?: (chunk: string) => void,
): void {
  if (!stream) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    onChunk?.(chunk);
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, newline).replace(/\r$/, ''));
      partial = partial.slice(newline + 1);
    }
    while (partial.length > MAX_LOG_LINE_CHARS) {
      onLine(partial.slice(0, MAX_LOG_LINE_CHARS));
      partial = partial.slice(MAX_LOG_LINE_CHARS);
    }
  });
  stream.on('end', () => {
    if (partial !== '') onLine(partial);
    partial = '';
  });
  stream.on('error', () => {
    // A broken pipe to a dead child is not news; its exit code tells the story.
  });
}

/** Timers take at most 2^31 - 1 ms; Node turns a longer delay into 1 ms. */
const MAX_TIMER_IN_MS = 2_147_483_647;

function integerOption(name: string, value: number | undefined, fallback: number, min: 0 | 1): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < min || n > MAX_TIMER_IN_MS) {
    throw new OrchestratorError(
      'CONFIG_INVALID',
      `local batch backend: ${name} must be an integer from ${min} to ${MAX_TIMER_IN_MS}, got ${value}`,
    );
  }
  return n;
}
