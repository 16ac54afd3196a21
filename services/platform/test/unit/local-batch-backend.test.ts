import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOrchestratorError } from '@orch/core';
import type { BatchBackend, BatchPool, BatchTaskSpec, BatchTaskState } from '@orch/core';
import { createLocalBatchBackend } from '@orch/platform/local-batch';
import type { LocalBatchBackendOptions } from '@orch/platform/local-batch';

const FIXTURE = fileURLToPath(new URL('../fixtures/batch-task.js', import.meta.url));

/** What the fixture task does, read from its first job's `data`. */
interface TaskBehaviour {
  sleepMs?: number;
  exitCode?: number;
  stderr?: string;
  stdout?: string;
  ignoreSigterm?: boolean;
  padding?: string;
}

interface TaskRun {
  pid: number;
  start: number;
  end?: number;
  specId?: string;
  taskId?: string;
  pool?: string;
  extra?: string;
}

const spec = (id: string, data: TaskBehaviour = {}): BatchTaskSpec => ({
  id,
  jobs: [{ jobId: `${id}-job`, type: 'synthetic', rows: 1, estimatedRuntimeSec: 1, data: { ...data }, attempt: 1 }],
});

/** Retries `check` until it stops throwing, for at most `timeoutInMs`. */
async function eventually<T>(check: () => T | Promise<T>, timeoutInMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** The greatest number of intervals that contain one instant (an end and a start at the same ms do not overlap). */
function maxOverlap(intervals: readonly { start: number; end: number }[]): number {
  const events = intervals.flatMap(({ start, end }) => [
    { at: start, delta: 1 },
    { at: end, delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let max = 0;
  for (const { delta } of events) max = Math.max(max, (current += delta));
  return max;
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('local batch backend', { timeout: 30_000 }, () => {
  let outDir: string;
  const backends: BatchBackend[] = [];

  const create = (options: Partial<LocalBatchBackendOptions> = {}): BatchBackend => {
    const backend = createLocalBatchBackend({
      command: [process.execPath, FIXTURE],
      ...options,
      env: { ORCH_TEST_OUT_DIR: outDir, ...options.env },
    });
    backends.push(backend);
    return backend;
  };

  /** The runs of a task, in the order they started. */
  const runsOf = async (taskId: string): Promise<TaskRun[]> => {
    const starts = (await readdir(outDir)).filter((f) => f.startsWith(`${taskId}.`) && f.endsWith('.start'));
    const runs = await Promise.all(
      starts.map(async (file) => {
        const started = JSON.parse(await readFile(path.join(outDir, file), 'utf8')) as TaskRun;
        const endFile = path.join(outDir, file.replace(/\.start$/, '.end'));
        const ended = await readFile(endFile, 'utf8').then(
          (text) => JSON.parse(text) as Partial<TaskRun>,
          () => ({}),
        );
        return { ...started, ...ended };
      }),
    );
    return runs.sort((a, b) => a.start - b.start);
  };

  const stateOf = async (backend: BatchBackend, pool: BatchPool, taskId: string): Promise<BatchTaskState | undefined> =>
    (await backend.getTaskStates(pool, [taskId])).get(taskId);

  const completedState = (backend: BatchBackend, pool: BatchPool, taskId: string): Promise<BatchTaskState> =>
    eventually(async () => {
      const state = await stateOf(backend, pool, taskId);
      expect(state?.state).toBe('completed');
      return state!;
    });

  beforeEach(async () => {
    outDir = await mkdtemp(path.join(tmpdir(), 'local-batch-test-'));
  });

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((b) => b.close()));
    await rm(outDir, { recursive: true, force: true });
  });

  it('runs a task as a child process that gets its spec, pool and id, and reports exit code 0', async () => {
    const backend = create({ env: { ORCH_TEST_EXTRA: 'from-options' } });
    expect(backend.kind).toBe('local');

    await backend.submitTasks('ml', [spec('task-ok')]);

    expect(await completedState(backend, 'ml', 'task-ok')).toEqual({ state: 'completed', exitCode: 0 });
    const [run, ...others] = await runsOf('task-ok');
    expect(others).toEqual([]);
    expect(run).toMatchObject({ specId: 'task-ok', taskId: 'task-ok', pool: 'ml', extra: 'from-options' });
  });

  it('reports a non-zero exit with its code and the tail of stderr', async () => {
    const backend = create();
    const stderr = `${'x'.repeat(5000)}\nsomething broke at the end\n`;

    await backend.submitTasks('batch', [spec('task-fails', { exitCode: 3, stderr })]);

    const state = await completedState(backend, 'batch', 'task-fails');
    expect(state).toMatchObject({ state: 'completed', exitCode: 3 });
    const failure = state.state === 'completed' ? (state.failure ?? '') : '';
    expect(failure.endsWith('something broke at the end')).toBe(true);
    expect(failure.length).toBeLessThanOrEqual(2048);
  });

  it('reports every requested id, and ids it never ran (or ran in another pool) as unknown', async () => {
    const backend = create();
    await backend.submitTasks('batch', [spec('task-in-batch')]);
    await completedState(backend, 'batch', 'task-in-batch');

    const states = await backend.getTaskStates('ml', ['never-submitted', 'task-in-batch']);

    expect(states).toEqual(
      new Map([
        ['never-submitted', { state: 'unknown' }],
        ['task-in-batch', { state: 'unknown' }],
      ]),
    );
  });

  it('runs a task once however often its id is submitted', async () => {
    const backend = create();

    await backend.submitTasks('ml', [spec('task-once', { sleepMs: 100 }), spec('task-once')]);
    await backend.submitTasks('ml', [spec('task-once')]);
    await completedState(backend, 'ml', 'task-once');
    await backend.submitTasks('ml', [spec('task-once')]);

    expect(await stateOf(backend, 'ml', 'task-once')).toEqual({ state: 'completed', exitCode: 0 });
    expect(await runsOf('task-once')).toHaveLength(1);
  });

  it('runs at most maxConcurrentTasks tasks at once across pools, the others waiting as pending', async () => {
    const backend = create({ maxConcurrentTasks: 2 });
    const ids = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
    const poolOf = (id: string): BatchPool => (Number(id.slice(1)) % 2 === 0 ? 'ml' : 'batch');

    for (const id of ids) await backend.submitTasks(poolOf(id), [spec(id, { sleepMs: 200 })]);

    const early = await Promise.all(ids.map((id) => stateOf(backend, poolOf(id), id)));
    expect(early.map((s) => s?.state)).toEqual(['running', 'running', 'pending', 'pending', 'pending', 'pending']);
    for (const id of ids)
      expect(await completedState(backend, poolOf(id), id)).toEqual({ state: 'completed', exitCode: 0 });
    const runs = (await Promise.all(ids.map((id) => runsOf(id)))).flat();
    expect(runs).toHaveLength(6);
    expect(maxOverlap(runs.map((r) => ({ start: r.start, end: r.end ?? Number.NaN })))).toBeLessThanOrEqual(2);
  });

  it('starts pending tasks first in, first out', async () => {
    const backend = create({ maxConcurrentTasks: 1 });
    const ids = ['f1', 'f2', 'f3', 'f4'];

    await backend.submitTasks('ml', [spec('f1'), spec('f2')]);
    await backend.submitTasks('batch', [spec('f3')]);
    await backend.submitTasks('ml', [spec('f4')]);
    await completedState(backend, 'ml', 'f4');

    // One at a time, so each task started after the previous one ended.
    const runs = await Promise.all(ids.map(async (id) => (await runsOf(id))[0]!));
    const byStart = [...runs].sort((a, b) => a.start - b.start || a.pid - b.pid);
    expect(byStart.map((r) => r.specId)).toEqual(ids);
  });

  it('kills a task that outlives taskTimeoutInMs and reports it timed out', async () => {
    const backend = create({ taskTimeoutInMs: 300 });

    await backend.submitTasks('ml', [spec('task-slow', { sleepMs: 60_000 })]);

    const state = await completedState(backend, 'ml', 'task-slow');
    expect(state.state === 'completed' && state.exitCode).not.toBe(0);
    expect(state).toMatchObject({ failure: expect.stringMatching(/^task timed out/) as unknown });
    const [run] = await runsOf('task-slow');
    expect(run?.end).toBeUndefined();
    expect(isAlive(run!.pid)).toBe(false);
  });

  it('reports a child that cannot be spawned as completed with exit code -1 and the error', async () => {
    const backend = create({ command: [path.join(outDir, 'no-such-executable')] });

    await backend.submitTasks('ml', [spec('task-no-exe')]);

    expect(await completedState(backend, 'ml', 'task-no-exe')).toEqual({
      state: 'completed',
      exitCode: -1,
      failure: expect.stringContaining('ENOENT') as unknown,
    });
  });

  it('refuses a spec over 1 MiB before starting any task of the call', async () => {
    const backend = create();

    const submitting = backend.submitTasks('ml', [
      spec('task-small'),
      spec('task-huge', { padding: 'x'.repeat(1_100_000) }),
    ]);

    await expect(submitting).rejects.toSatisfy((e) => isOrchestratorError(e) && e.code === 'VALIDATION_FAILED');
    expect(await backend.getTaskStates('ml', ['task-small', 'task-huge'])).toEqual(
      new Map([
        ['task-small', { state: 'unknown' }],
        ['task-huge', { state: 'unknown' }],
      ]),
    );
  });

  it.runIf(process.platform === 'linux')('refuses a spec too large for one Linux environment variable', async () => {
    const backend = create();

    const submitting = backend.submitTasks('ml', [spec('task-200k', { padding: 'x'.repeat(200_000) })]);

    await expect(submitting).rejects.toSatisfy((e) => isOrchestratorError(e) && e.code === 'VALIDATION_FAILED');
  });

  it('logs the lines a task writes at debug, with its task id', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const backend = create({ logger });

    await backend.submitTasks('ml', [spec('task-talks', { stdout: 'hello from the task', stderr: 'a warning\n' })]);
    await completedState(backend, 'ml', 'task-talks');

    await eventually(() => {
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 20, taskId: 'task-talks', stream: 'stdout', msg: 'hello from the task' }),
      );
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 20, taskId: 'task-talks', stream: 'stderr', msg: 'a warning' }),
      );
    });
  });

  it('forgets the oldest completed tasks beyond maxRetainedCompletedTasks', async () => {
    const backend = create({ maxRetainedCompletedTasks: 1 });

    await backend.submitTasks('ml', [spec('old')]);
    await completedState(backend, 'ml', 'old');
    await backend.submitTasks('ml', [spec('new')]);
    await completedState(backend, 'ml', 'new');

    expect(await stateOf(backend, 'ml', 'old')).toEqual({ state: 'unknown' });
  });

  it('close waits for a running task to finish, and starts no pending task', async () => {
    const backend = create({ maxConcurrentTasks: 1 });
    await backend.submitTasks('ml', [spec('task-draining', { sleepMs: 300 }), spec('task-waiting')]);
    await eventually(async () => expect(await runsOf('task-draining')).toHaveLength(1));

    await backend.close();

    const [run] = await runsOf('task-draining');
    expect(run?.end).toBeTypeOf('number');
    expect(isAlive(run!.pid)).toBe(false);
    expect(await stateOf(backend, 'ml', 'task-draining')).toEqual({ state: 'completed', exitCode: 0 });
    expect(await stateOf(backend, 'ml', 'task-waiting')).toEqual({ state: 'pending' });
    expect(await runsOf('task-waiting')).toEqual([]);
    await expect(backend.submitTasks('ml', [spec('too-late')])).rejects.toSatisfy(
      (e) => isOrchestratorError(e) && e.code === 'DEPENDENCY_UNAVAILABLE' && e.retryable,
    );
  });

  it('close kills a task that outlives closeGraceInMs, with SIGKILL if it ignores SIGTERM', async () => {
    const backend = create({ closeGraceInMs: 100, killGraceInMs: 200 });
    await backend.submitTasks('batch', [spec('task-stubborn', { sleepMs: 60_000, ignoreSigterm: true })]);
    const [started] = await eventually(async () => {
      const runs = await runsOf('task-stubborn');
      expect(runs).toHaveLength(1);
      return runs;
    });

    await backend.close();

    expect(isAlive(started!.pid)).toBe(false);
    expect(await stateOf(backend, 'batch', 'task-stubborn')).toMatchObject({ state: 'completed', exitCode: 128 + 9 });
  });

  it('rejects options out of range', () => {
    const attempts = [
      () => createLocalBatchBackend({ command: [] }),
      () => createLocalBatchBackend({ command: [process.execPath], maxConcurrentTasks: 0 }),
      () => createLocalBatchBackend({ command: [process.execPath], taskTimeoutInMs: 2 ** 31 }),
    ];
    for (const attempt of attempts) {
      expect(attempt).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });
});
