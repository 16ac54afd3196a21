import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INGEST_QUEUE, transition } from '@orch/core';
import type { Job, JobStore, QueueTransport, Subscription } from '@orch/core';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { eventually, makeJob, makeQueuedJob, withOverrides } from '@orch/platform/testing';
import { createReconciler, startScheduler } from '@orch/scheduler';

const logger = pino({ level: 'silent' });
let store: JobStore;
let transport: QueueTransport;
let scheduler: Subscription | undefined;

beforeAll(async () => {
  store = await createPgliteJobStore({});
});
afterAll(() => store.close());
beforeEach(() => {
  transport = createMemoryTransport();
});
afterEach(async () => {
  await scheduler?.close();
  scheduler = undefined;
  await transport.close();
});

const depth = async (queue: string) => (await transport.getQueueDepth(queue)).active;
const policy = { maxAttempts: 3, baseDelayInMs: 1000, maxDelayInMs: 1000, jitter: 0 };

describe('scheduler', () => {
  it('classifies a submitted job, records the decision and publishes to the pool lane', async () => {
    scheduler = await startScheduler({ store, transport, logger });
    const spark = makeJob({ rows: 5_000_000, estimated_runtime_sec: 100 }); // cost 15
    const urgent = makeJob({ rows: 0, estimated_runtime_sec: 30, priority: 'urgent' }); // 4.5 → ml, high lane
    await store.createJobs([spark, urgent]);
    await transport.send(INGEST_QUEUE, { jobId: spark.id });
    await transport.send(INGEST_QUEUE, { jobId: urgent.id });

    const queued = await eventually(async () => {
      const job = await store.getJob(spark.id);
      return job?.state === 'queued' ? job : undefined;
    });
    expect(queued.decision).toEqual({ queue: 'spark-jobs', cost: 15, reason: 'cost 15 > 10' });
    expect(queued.history.map((h) => h.status)).toEqual(['submitted', 'queued']);
    await eventually(async () =>
      (await depth('spark-jobs')) === 1 && (await depth('ml-jobs-high')) === 1 ? true : undefined,
    );
    expect(await depth('ml-jobs')).toBe(0);
  });

  it('settles the ingest message once the job is published, without waiting for its dispatch mark', async () => {
    // A store whose marks never finish: bookkeeping must not hold up the pipeline.
    const stalled = withOverrides(store, { markDispatched: () => new Promise<void>(() => undefined) });
    scheduler = await startScheduler({ store: stalled, transport, logger });
    const jobs = [makeJob(), makeJob(), makeJob()];
    await store.createJobs(jobs);
    for (const job of jobs) await transport.send(INGEST_QUEUE, { jobId: job.id });

    await eventually(async () => ((await depth('batch-jobs')) === 3 ? true : undefined));
    await eventually(async () => ((await depth(INGEST_QUEUE)) === 0 ? true : undefined));
  });

  it('does not publish a cancelled job', async () => {
    scheduler = await startScheduler({ store, transport, logger });
    const job = makeJob();
    await store.createJobs([transition(job, 'cancelled', { at: new Date() })]);
    await transport.send(INGEST_QUEUE, { jobId: job.id });
    await eventually(async () => ((await depth(INGEST_QUEUE)) === 0 ? true : undefined));
    expect(await depth('batch-jobs')).toBe(0);
    expect((await store.getJob(job.id))?.state).toBe('cancelled');
  });
});

describe('reconciler', () => {
  it('re-dispatches a job whose message was never confirmed sent, once the grace period passed', async () => {
    const old = new Date(Date.now() - 60_000);
    const job = makeJob({}, { now: old });
    await store.createJobs([job]);
    const reconciler = createReconciler(
      { store, transport, logger },
      { retryPolicy: policy, dispatchGraceInMs: 30_000 },
    );
    expect(await reconciler.reconcile()).toMatchObject({ redispatched: 1 });
    expect(await depth(INGEST_QUEUE)).toBe(1);
    // Marked dispatched: the next pass leaves it alone.
    expect(await reconciler.reconcile()).toMatchObject({ redispatched: 0 });
  });

  it('takes back a running job whose heartbeat stopped and schedules its retry', async () => {
    const old = new Date(Date.now() - 120_000);
    const queued = makeQueuedJob('actor-jobs', {}, { now: old });
    const running = transition(queued, 'running', { at: old, patch: { attempts: 1, heartbeatAt: old.toISOString() } });
    await store.createJobs([running]);
    const reconciler = createReconciler(
      { store, transport, logger },
      { retryPolicy: policy, heartbeatTimeoutInMs: 30_000 },
    );
    expect(await reconciler.reconcile()).toMatchObject({ expired: 1, redispatched: 1 });
    const job = await store.getJob(running.id);
    expect(job?.state).toBe('retrying');
    expect(job?.error?.code).toBe('LOCK_LOST');
    expect((await transport.getQueueDepth('actor-jobs')).scheduled).toBe(1);
  });

  it('fails a silent running job that has no attempts left', async () => {
    const old = new Date(Date.now() - 120_000);
    const queued = makeQueuedJob('actor-jobs', {}, { now: old, maxAttempts: 1 });
    await store.createJobs([transition(queued, 'running', { at: old, patch: { attempts: 1 } })]);
    const reconciler = createReconciler({ store, transport, logger }, { retryPolicy: policy });
    await reconciler.reconcile();
    expect((await store.getJob(queued.id))?.state).toBe('failed');
  });

  it('after a restart of a non-durable transport, re-dispatches every unfinished job, page by page', async () => {
    const fresh = await createPgliteJobStore({});
    try {
      const now = new Date();
      const jobs: Job[] = [
        ...Array.from({ length: 5 }, () => makeQueuedJob('batch-jobs', {}, { now })),
        makeJob({}, { now }),
        transition(makeQueuedJob('spark-jobs', {}, { now }), 'running', {
          at: now,
          patch: { attempts: 1, heartbeatAt: now.toISOString() },
        }),
      ];
      await fresh.createJobs(jobs);
      await fresh.markDispatched(
        jobs.map((j) => j.id),
        now,
      ); // their messages died with the old process
      await new Promise((r) => setTimeout(r, 5));
      const reconciler = createReconciler({ store: fresh, transport, logger }, { retryPolicy: policy, pageSize: 2 });
      expect(await reconciler.reconcile({ recoverAll: true })).toEqual({ redispatched: 7, expired: 1 });
      expect(await depth('batch-jobs')).toBe(5);
      expect(await depth(INGEST_QUEUE)).toBe(1);
      expect((await transport.getQueueDepth('spark-jobs')).scheduled + (await depth('spark-jobs'))).toBe(1);
    } finally {
      await fresh.close();
    }
  });
});
