import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  computeSyntheticAggregates,
  createHandlerRegistry,
  runSynthetic,
  dispatchJobs,
  lanesOf,
  resultKeyFor,
  transition,
} from '@orch/core';
import type { BlobStore, Job, JobStore, QueueTransport, Subscription } from '@orch/core';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { eventually, makeQueuedJob } from '@orch/platform/testing';
import { startWorker, type WorkerOptions } from '@orch/workers';

const logger = pino({ level: 'silent' });
let store: JobStore;
let blobs: BlobStore;
let blobDir: string;
let transport: QueueTransport;
let worker: Subscription | undefined;

beforeAll(async () => {
  store = await createPgliteJobStore({});
  blobDir = await mkdtemp(path.join(tmpdir(), 'orch-worker-'));
  blobs = createFsBlobStore({ rootDir: blobDir });
});
afterAll(async () => {
  await store.close();
  await rm(blobDir, { recursive: true, force: true });
});
beforeEach(() => {
  transport = createMemoryTransport({ lockDurationInMs: 5_000 });
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await transport.close();
});

const fastRetry = { maxAttempts: 3, baseDelayInMs: 10, maxDelayInMs: 20, jitter: 0 };

async function start(options: Partial<WorkerOptions> = {}, handlers = createHandlerRegistry()): Promise<void> {
  worker = await startWorker(
    { store, transport, blobs, handlers, logger },
    { pool: 'actor-jobs', concurrency: 2, retryPolicy: fastRetry, heartbeatIntervalInMs: 20, ...options },
  );
}

async function enqueue(job: Job): Promise<void> {
  await store.createJobs([job]);
  await dispatchJobs(transport, [job], new Date());
}

const stateOf = async (id: string, state: string): Promise<Job | undefined> => {
  const job = await store.getJob(id);
  return job?.state === state ? job : undefined;
};

describe('worker', () => {
  it('runs a queued job, stores a verifiable result and records succeeded', async () => {
    await start();
    const job = makeQueuedJob('actor-jobs', { rows: 12_345, latency_sensitive: true });
    await enqueue(job);
    const done = await eventually(() => stateOf(job.id, 'succeeded'));
    expect(done.attempts).toBe(1);
    expect(done.resultKey).toBe(resultKeyFor(job.id));
    expect(done.history.map((h) => h.status)).toEqual(['submitted', 'queued', 'running', 'succeeded']);
    const stored = JSON.parse(new TextDecoder().decode(await blobs.downloadBlob(resultKeyFor(job.id)))) as unknown;
    expect(stored).toMatchObject(computeSyntheticAggregates(job.id, 12_345));
  });

  it('ignores a duplicate message for a finished job: it never runs twice', async () => {
    await start();
    const job = makeQueuedJob('actor-jobs', { rows: 10 });
    await enqueue(job);
    const done = await eventually(() => stateOf(job.id, 'succeeded'));
    await dispatchJobs(transport, [{ ...job }], new Date()); // the same message again
    await eventually(async () => ((await transport.getQueueDepth('actor-jobs')).active === 0 ? true : undefined));
    expect(await store.getJob(job.id)).toEqual(done);
  });

  it('never runs a cancelled job', async () => {
    const job = makeQueuedJob('actor-jobs', { rows: 10 });
    await store.createJobs([transition(job, 'cancelled', { at: new Date() })]);
    await dispatchJobs(transport, [job], new Date());
    await start();
    await eventually(async () => ((await transport.getQueueDepth('actor-jobs')).active === 0 ? true : undefined));
    expect((await store.getJob(job.id))?.state).toBe('cancelled');
    expect(await blobs.downloadBlob(resultKeyFor(job.id))).toBeUndefined();
  });

  it('retries a failed attempt with backoff and succeeds on a later attempt', async () => {
    await start();
    const job = makeQueuedJob('actor-jobs', { rows: 10, data: { fail_first_attempts: 2 } });
    await enqueue(job);
    const done = await eventually(() => stateOf(job.id, 'succeeded'));
    expect(done.attempts).toBe(3);
    expect(done.history.map((h) => h.status)).toEqual([
      'submitted',
      'queued',
      'running',
      'retrying',
      'running',
      'retrying',
      'running',
      'succeeded',
    ]);
    expect(done.error).toBeNull();
  });

  it('fails the job with its error after the last attempt and dead-letters the message', async () => {
    await start();
    const job = makeQueuedJob('actor-jobs', { rows: 10, data: { fail_first_attempts: 10 } }, { maxAttempts: 2 });
    await enqueue(job);
    const failed = await eventually(() => stateOf(job.id, 'failed'));
    expect(failed.attempts).toBe(2);
    expect(failed.error).toEqual({ code: 'HANDLER_FAILED', message: 'synthetic failure injected on attempt 2 of 10' });
    const lane = lanesOf('actor-jobs')[1]!.queue;
    const dead = await eventually(async () => {
      const letters = await transport.peekDeadLetters<{ jobId: string }>(lane);
      return letters.length > 0 ? letters : undefined;
    });
    expect(dead[0]).toMatchObject({ body: { jobId: job.id }, reason: 'HANDLER_FAILED' });
  });

  it('times out a job that runs too long and fails it with JOB_TIMEOUT after its attempts', async () => {
    await start({ jobTimeoutInMs: 50, simulatedDurationFactor: 1 });
    const job = makeQueuedJob('actor-jobs', { rows: 10, estimated_runtime_sec: 60 }, { maxAttempts: 2 });
    await enqueue(job);
    const failed = await eventually(() => stateOf(job.id, 'failed'));
    expect(failed.error?.code).toBe('JOB_TIMEOUT');
  });

  it('stops a running job that is cancelled, and keeps no result for it', async () => {
    await start({ simulatedDurationFactor: 1 });
    const job = makeQueuedJob('actor-jobs', { rows: 10, estimated_runtime_sec: 30 });
    await enqueue(job);
    const running = await eventually(() => stateOf(job.id, 'running'));
    await store.updateJob(transition(running, 'cancelled', { at: new Date() }), { ifVersion: running.version });
    // The worker notices at its next heartbeat and frees its slot.
    await eventually(async () => ((await transport.getQueueDepth('actor-jobs')).active === 0 ? true : undefined));
    const final = await store.getJob(job.id);
    expect(final?.state).toBe('cancelled');
    expect(final?.history.map((h) => h.status)).not.toContain('succeeded');
    expect(await blobs.downloadBlob(resultKeyFor(job.id))).toBeUndefined();
  });

  it('takes urgent jobs from the high lane before a backlog of normal ones', async () => {
    const backlog = Array.from({ length: 20 }, () => makeQueuedJob('actor-jobs', { rows: 10, priority: 'normal' }));
    const urgent = Array.from({ length: 3 }, () => makeQueuedJob('actor-jobs', { rows: 10, priority: 'urgent' }));
    for (const job of [...backlog, ...urgent]) await enqueue(job); // urgent ones submitted last
    const started: string[] = [];
    await start(
      { concurrency: 1 },
      createHandlerRegistry({
        synthetic: async (input, context) => {
          started.push(input.jobId);
          await new Promise((r) => setTimeout(r, 2));
          return runSynthetic(input, context);
        },
      }),
    );
    await eventually(() => (started.length === 23 ? true : undefined));
    const urgentIds = new Set(urgent.map((j) => j.id));
    const lastUrgent = Math.max(...[...urgentIds].map((id) => started.indexOf(id)));
    // One slot: at most one normal job (already taken when the urgent ones were seen) starts before them.
    expect(lastUrgent).toBeLessThanOrEqual(3);
  });

  it.each([
    { headroom: undefined, urgentStartsAt: 'once' },
    { headroom: 0, urgentStartsAt: 'after the normal job' },
  ])(
    'given its one slot busy with a long normal job and priority headroom $headroom, then an urgent job starts $urgentStartsAt',
    async ({ headroom }) => {
      const normal = makeQueuedJob('actor-jobs', { rows: 10, priority: 'normal' });
      const urgent = makeQueuedJob('actor-jobs', { rows: 10, priority: 'urgent' });
      let finishNormal!: () => void;
      const normalMayFinish = new Promise<void>((resolve) => (finishNormal = resolve));
      await start(
        { concurrency: 1, ...(headroom !== undefined && { priorityHeadroom: headroom }) },
        createHandlerRegistry({
          synthetic: async (input, context) => {
            if (input.jobId === normal.id) await normalMayFinish;
            return runSynthetic(input, context);
          },
        }),
      );
      await enqueue(normal);
      await eventually(() => stateOf(normal.id, 'running'));

      await enqueue(urgent);

      if (headroom === 0) {
        await new Promise((r) => setTimeout(r, 200));
        expect((await store.getJob(urgent.id))?.state).toBe('queued');
        finishNormal();
        await eventually(() => stateOf(urgent.id, 'succeeded'));
      } else {
        await eventually(() => stateOf(urgent.id, 'succeeded'));
        expect((await store.getJob(normal.id))?.state).toBe('running');
        finishNormal();
      }
      await eventually(() => stateOf(normal.id, 'succeeded'));
    },
  );
});
