import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { batchManifestKey, dispatchJobs, OrchestratorError, resultKeyFor } from '@orch/core';
import type {
  BatchBackend,
  BatchPool,
  BatchTaskSpec,
  BatchTaskState,
  BlobStore,
  Job,
  JobStore,
  QueueTransport,
} from '@orch/core';
import { startBatchSubmitter, type BatchSubmitter } from '@orch/batch-submitter';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { eventually, makeQueuedJob } from '@orch/platform/testing';

/**
 * A batch backend that completes each task on the next poll, the way the task runner would:
 * result blobs and a manifest, or a failed exit for tasks the test marks to fail.
 */
class ScriptedBackend implements BatchBackend {
  readonly kind = 'scripted';
  readonly submitted: { pool: BatchPool; spec: BatchTaskSpec }[] = [];
  readonly calls = { submit: 0, states: 0 };
  readonly inline: boolean[] = [];
  failNextTasks = 0;
  forgetNextTasks = 0;
  private readonly outcome = new Map<string, BatchTaskState>();
  private readonly blobs: BlobStore;
  constructor(blobs: BlobStore) {
    this.blobs = blobs;
  }

  async submitTasks(pool: BatchPool, tasks: readonly BatchTaskSpec[]): Promise<void> {
    this.calls.submit++;
    for (const submitted of tasks) {
      const spec = submitted.specKey ? await this.readSpec(submitted.specKey) : submitted;
      this.submitted.push({ pool, spec });
      this.inline.push(!submitted.specKey);
      if (this.forgetNextTasks > 0) {
        this.forgetNextTasks--;
        continue;
      }
      if (this.failNextTasks > 0) {
        this.failNextTasks--;
        this.outcome.set(spec.id, { state: 'completed', exitCode: 1, failure: 'node ran out of disk' });
        continue;
      }
      await Promise.all(
        spec.jobs.map((job) => this.blobs.uploadBlob(resultKeyFor(job.jobId), JSON.stringify({ ok: job.jobId }))),
      );
      await this.blobs.uploadBlob(
        batchManifestKey(spec.id),
        JSON.stringify({
          taskId: spec.id,
          outcomes: spec.jobs.map((j) => ({ jobId: j.jobId, status: 'succeeded', resultKey: resultKeyFor(j.jobId) })),
        }),
      );
      this.outcome.set(spec.id, { state: 'completed', exitCode: 0 });
    }
  }

  private async readSpec(key: string): Promise<BatchTaskSpec> {
    const bytes = await this.blobs.downloadBlob(key);
    return JSON.parse(new TextDecoder().decode(bytes)) as BatchTaskSpec;
  }

  getTaskStates(_pool: BatchPool, ids: readonly string[]): Promise<Map<string, BatchTaskState>> {
    this.calls.states++;
    return Promise.resolve(new Map(ids.map((id) => [id, this.outcome.get(id) ?? { state: 'unknown' }])));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const logger = pino({ level: 'silent' });
let store: JobStore;
let blobs: BlobStore;
let dir: string;
let transport: QueueTransport;
let backend: ScriptedBackend;
let submitter: BatchSubmitter | undefined;

beforeAll(async () => {
  store = await createPgliteJobStore({});
  dir = await mkdtemp(path.join(tmpdir(), 'orch-batch-'));
  blobs = createFsBlobStore({ rootDir: dir });
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  transport = createMemoryTransport();
  backend = new ScriptedBackend(blobs);
});
afterEach(async () => {
  await submitter?.close();
  submitter = undefined;
  await transport.close();
});

/** The store, but its next `failures` reads of jobs throw what `error` makes. */
function failingReads(failures: number, error: () => Error): JobStore {
  let left = failures;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'getJobs' && left > 0) {
        return () => {
          left--;
          return Promise.reject(error());
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function start(storeInUse: JobStore = store): Promise<void> {
  submitter = await startBatchSubmitter(
    { store: storeInUse, transport, blobs, backend, logger },
    {
      lingerInMs: 30,
      pollIntervalInMs: 20,
      retryPolicy: { maxAttempts: 3, baseDelayInMs: 10, maxDelayInMs: 10, jitter: 0 },
    },
  );
}

async function enqueue(jobs: Job[]): Promise<void> {
  await store.createJobs(jobs);
  await dispatchJobs(transport, jobs, new Date());
}

const allIn = (ids: string[], state: string) => async () => {
  const jobs = await store.getJobs(ids);
  return jobs.length === ids.length && jobs.every((j) => j.state === state) ? jobs : undefined;
};

/** Waits until every job has succeeded; returns them. */
const allSucceeded = (jobs: readonly Job[], timeoutInMs?: number): Promise<Job[]> =>
  eventually(
    allIn(
      jobs.map((j) => j.id),
      'succeeded',
    ),
    timeoutInMs,
  );

describe('batch submitter', () => {
  it('groups waiting jobs into tasks of at most 100 and records each job succeeded from the manifest', async () => {
    const jobs = Array.from({ length: 250 }, () => makeQueuedJob('batch-jobs', { rows: 10 }));
    await enqueue(jobs);
    await start();
    const done = await allSucceeded(jobs);
    expect(done.every((j) => j.resultKey === resultKeyFor(j.id) && j.attempts === 1)).toBe(true);
    expect(backend.submitted.every((t) => t.pool === 'batch' && t.spec.jobs.length <= 100)).toBe(true);
    expect(backend.submitted.reduce((n, t) => n + t.spec.jobs.length, 0)).toBe(250);
    expect(backend.submitted.length).toBeGreaterThanOrEqual(3);
    expect(new Set(done.map((j) => j.batchTaskId)).size).toBe(backend.submitted.length);
  });

  it('given a backlog of 1,000 jobs, then their 10 tasks reach the backend in a few calls, not one call each', async () => {
    const jobs = Array.from({ length: 1000 }, () => makeQueuedJob('batch-jobs', { rows: 10 }));
    await enqueue(jobs);
    await start();
    await allSucceeded(jobs, 60_000);
    expect(backend.submitted).toHaveLength(10);
    expect(backend.calls.submit).toBeLessThanOrEqual(3);
  }, 60_000);

  it('passes a task too large for the environment as a blob (claim check)', async () => {
    const big = 'x'.repeat(4_000);
    const jobs = Array.from({ length: 40 }, () => makeQueuedJob('batch-jobs', { rows: 10, data: { big } }));
    await enqueue(jobs);
    await start();
    await allSucceeded(jobs);
    expect(backend.inline).toContain(false);
    expect(backend.submitted.flatMap((t) => t.spec.jobs.map((j) => j.data['big']))).toEqual(jobs.map(() => big));
  });

  it('sends ml jobs to the ml pool', async () => {
    const jobs = [makeQueuedJob('ml-jobs'), makeQueuedJob('ml-jobs', { priority: 'urgent' })];
    await enqueue(jobs);
    await start();
    await allSucceeded(jobs);
    expect(backend.submitted.map((t) => t.pool)).toEqual(expect.arrayContaining(['ml']));
    expect(backend.submitted.every((t) => t.pool === 'ml')).toBe(true);
  });

  it('retries the jobs of a failed task through the retry policy', async () => {
    backend.failNextTasks = 1;
    const jobs = Array.from({ length: 3 }, () => makeQueuedJob('batch-jobs'));
    await enqueue(jobs);
    await start();
    const done = await allSucceeded(jobs);
    expect(done.every((j) => j.attempts === 2)).toBe(true);
    expect(done[0]!.history.map((h) => h.status)).toEqual([
      'submitted',
      'queued',
      'running',
      'retrying',
      'running',
      'succeeded',
    ]);
    expect(done[0]!.history[3]!.note).toContain('exited with code 1');
  });

  it('retries jobs of a task the backend lost, and fails them when attempts run out', async () => {
    backend.forgetNextTasks = 3;
    const job = makeQueuedJob('batch-jobs', {}, { maxAttempts: 3 });
    await enqueue([job]);
    await start();
    const [failed] = await eventually(allIn([job.id], 'failed'));
    expect(failed!.attempts).toBe(3);
    expect(failed!.error?.message).toContain('lost');
  });

  it('given the database is restarting when a group is submitted, then it waits and the jobs still succeed', async () => {
    const jobs = Array.from({ length: 5 }, () => makeQueuedJob('ml-jobs'));
    await enqueue(jobs);
    await start(
      failingReads(2, () => new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'connection refused', { retryable: true })),
    );
    const done = await allSucceeded(jobs);
    expect(done.every((j) => j.attempts === 1)).toBe(true);
  });

  it('given a group cannot be submitted, then its messages are handed back and redelivered, not lost', async () => {
    const jobs = Array.from({ length: 5 }, () => makeQueuedJob('batch-jobs'));
    await enqueue(jobs);
    await start(failingReads(1, () => new Error('statement timeout')));
    const done = await allSucceeded(jobs);
    expect(done.every((j) => j.attempts === 1)).toBe(true);
  });

  it('does not run jobs that are no longer queued', async () => {
    const job = makeQueuedJob('batch-jobs');
    await store.createJobs([
      { ...job, state: 'cancelled', history: [...job.history, { status: 'cancelled', at: job.updatedAt }] },
    ]);
    await dispatchJobs(transport, [job], new Date());
    await start();
    await eventually(async () => ((await transport.getQueueDepth('batch-jobs')).active === 0 ? true : undefined));
    expect(backend.submitted).toEqual([]);
  });
});
