import { randomUUID } from 'node:crypto';
import {
  JOB_STATES,
  isTerminal,
  type Job,
  type JobQuery,
  type JobState,
  type JobStore,
  type RecoveryQuery,
} from '@orch/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const YEAR_IN_MS = 365.25 * 24 * 3600 * 1000;

/**
 * The behaviour every `JobStore` must have (BullMQ-style conformance suite). `create` may return a
 * store over a fresh schema or over one shared with earlier tests and runs, so no test assumes an
 * empty table: each uses fresh ids, and the tests that list jobs give theirs timestamps no other
 * test uses (far future for listing, far past for recovery) and look only at their own jobs.
 * Tests run one at a time; the store is closed after each.
 */
export function describeJobStoreContract(name: string, create: () => Promise<JobStore>): void {
  describe(`JobStore contract: ${name}`, () => {
    let store: JobStore;

    beforeEach(async () => {
      store = await create();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('createJobs and getJob', () => {
      it('when a fully populated job is written, then it reads back deep-equal', async () => {
        const job = fullJob();
        await store.createJobs([job]);
        expect(await store.getJob(job.id)).toStrictEqual(job);
      });

      it('when a minimal job (every nullable field null) is written, then it reads back deep-equal', async () => {
        const job = testJob();
        await store.createJobs([job]);
        expect(await store.getJob(job.id)).toStrictEqual(job);
      });

      it('when the job does not exist, then getJob returns undefined', async () => {
        expect(await store.getJob(`missing-${randomUUID()}`)).toBeUndefined();
      });

      it('when getJobs is given known and unknown ids, then it returns the known jobs only', async () => {
        const [a, b, c] = [testJob(), fullJob(), testJob()];
        await store.createJobs([a, b, c]);
        const jobs = await store.getJobs([b.id, `missing-${randomUUID()}`, a.id]);
        expect(sortById(jobs)).toStrictEqual(sortById([a, b]));
        expect(await store.getJobs([])).toStrictEqual([]);
      });

      it('when 1,000 jobs are written in one call, then all of them are stored', async () => {
        const jobs = Array.from({ length: 1000 }, () => testJob());
        await store.createJobs(jobs);
        const stored = await store.getJobs(jobs.map((j) => j.id));
        expect(sortById(stored)).toStrictEqual(sortById(jobs));
      });

      it('when an id already exists, then createJobs throws CONFLICT and the stored job is unchanged', async () => {
        const job = testJob();
        await store.createJobs([job]);
        await expect(store.createJobs([{ ...job, type: 'other' }])).rejects.toMatchObject({
          name: 'OrchestratorError',
          code: 'CONFLICT',
        });
        expect(await store.getJob(job.id)).toStrictEqual(job);
      });

      it('when one job of a large batch already exists, then none of the batch is inserted', async () => {
        const existing = testJob();
        await store.createJobs([existing]);
        const batch = [...Array.from({ length: 700 }, () => testJob()), { ...existing }];
        await expect(store.createJobs(batch)).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await store.getJobs(batch.slice(0, -1).map((j) => j.id))).toStrictEqual([]);
      });

      it('when a batch holds the same id twice, then it throws CONFLICT and inserts none', async () => {
        const a = testJob();
        const b = testJob();
        await expect(store.createJobs([a, b, { ...a }])).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await store.getJobs([a.id, b.id])).toStrictEqual([]);
      });

      it('when the batch is empty, then createJobs does nothing', async () => {
        await expect(store.createJobs([])).resolves.toBeUndefined();
      });
    });

    describe('updateJob', () => {
      it('when the version matches, then every mutable field is written and the version is incremented', async () => {
        const job = testJob();
        await store.createJobs([job]);
        const at = '2026-11-22T15:00:05.678Z';
        const changed: Job = {
          ...job,
          state: 'running',
          priority: 'high',
          rows: 42,
          estimatedRuntimeSec: 1.25,
          latencySensitive: true,
          type: 'other',
          data: { changed: [1, { deep: true }] },
          decision: { queue: 'ml-jobs', cost: 3.5, reason: 'gpu' },
          attempts: 1,
          maxAttempts: 7,
          error: { code: 'E', message: 'earlier failure' },
          resultKey: `results/${job.id}.json`,
          batchTaskId: 'task-9',
          updatedAt: at,
          heartbeatAt: at,
          nextAttemptAt: '2026-11-22T15:10:00.000Z',
          history: [...job.history, { status: 'running', at, note: 'attempt 1' }],
        };

        const stored = await store.updateJob(changed, { ifVersion: job.version });

        const expected = { ...changed, version: job.version + 1 };
        expect(stored).toStrictEqual(expected);
        expect(await store.getJob(job.id)).toStrictEqual(expected);
      });

      it('when the version is stale, then it returns undefined and the row is unchanged', async () => {
        const job = testJob();
        await store.createJobs([job]);
        const first = await store.updateJob({ ...job, state: 'queued' }, { ifVersion: job.version });
        expect(first?.version).toBe(job.version + 1);

        const second = await store.updateJob({ ...job, state: 'cancelled' }, { ifVersion: job.version });

        expect(second).toBeUndefined();
        expect(await store.getJob(job.id)).toStrictEqual(first);
      });

      it('when the job does not exist, then it returns undefined', async () => {
        expect(await store.updateJob(testJob(), { ifVersion: 1 })).toBeUndefined();
      });

      it('when a decision is cleared, then it reads back null', async () => {
        const job = testJob({ decision: { queue: 'actor-jobs', cost: 1, reason: 'small' } });
        await store.createJobs([job]);
        const stored = await store.updateJob({ ...job, decision: null }, { ifVersion: job.version });
        expect(stored?.decision).toBeNull();
      });
    });

    describe('queryJobs', () => {
      /** Jobs newer than any other test's, so they head every listing, in a known order. */
      async function seed(): Promise<Job[]> {
        const base = Date.now() + 1000 * YEAR_IN_MS;
        const specs: [JobState, Job['decision']][] = [
          ['submitted', null],
          ['queued', { queue: 'actor-jobs', cost: 1, reason: 'r' }],
          ['running', { queue: 'spark-jobs', cost: 2, reason: 'r' }],
          ['running', { queue: 'actor-jobs', cost: 1, reason: 'r' }],
          ['succeeded', { queue: 'spark-jobs', cost: 2, reason: 'r' }],
          ['failed', { queue: 'actor-jobs', cost: 1, reason: 'r' }],
          ['cancelled', null],
        ];
        const jobs = specs.map(([state, decision], i) => {
          // Two pairs share a creation time, so the id must break the tie.
          const createdAt = new Date(base + Math.floor(i / 2)).toISOString();
          return testJob({ state, decision, createdAt, updatedAt: createdAt });
        });
        await store.createJobs(jobs);
        return jobs.sort(newestFirst);
      }

      it('when paging with a cursor, then the pages list every job exactly once, newest first', async () => {
        const mine = await seed();
        const seen: Job[] = [];
        let cursor: string | undefined;
        for (let page = 0; seen.length < mine.length && page < mine.length; page++) {
          const result = await store.queryJobs({ limit: 3, cursor });
          expect(result.jobs.length).toBeLessThanOrEqual(3);
          seen.push(...result.jobs);
          if (result.nextCursor === null) break;
          cursor = result.nextCursor;
        }
        expect(seen.slice(0, mine.length)).toStrictEqual(mine);
      });

      it('when paging to the end, then no job repeats and the last page has no cursor', async () => {
        const mine = await seed();
        const ids: string[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 10_000; page++) {
          const result = await store.queryJobs({ limit: 1000, cursor, state: 'running' });
          ids.push(...result.jobs.map((j) => j.id));
          if (result.nextCursor === null) break;
          cursor = result.nextCursor;
        }
        expect(new Set(ids).size).toBe(ids.length);
        const running = mine.filter((j) => j.state === 'running').map((j) => j.id);
        expect(ids.slice(0, running.length)).toStrictEqual(running);
      });

      it('when filtering by state, by queue, or both, then only matching jobs are listed', async () => {
        const mine = await seed();
        const head = async (query: JobQuery, expected: Job[]): Promise<void> => {
          const { jobs } = await store.queryJobs(query);
          expect(jobs.slice(0, expected.length)).toStrictEqual(expected);
          expect(jobs.every((j) => (query.state ?? j.state) === j.state)).toBe(true);
          expect(jobs.every((j) => (query.queue ?? j.decision?.queue) === j.decision?.queue)).toBe(true);
        };
        await head(
          { limit: 50, state: 'running' },
          mine.filter((j) => j.state === 'running'),
        );
        await head(
          { limit: 50, queue: 'actor-jobs' },
          mine.filter((j) => j.decision?.queue === 'actor-jobs'),
        );
        await head(
          { limit: 50, state: 'running', queue: 'actor-jobs' },
          mine.filter((j) => j.state === 'running' && j.decision?.queue === 'actor-jobs'),
        );
      });

      it('when a limit is given, then a page holds at most that many jobs and offers a cursor', async () => {
        await seed();
        const page = await store.queryJobs({ limit: 2 });
        expect(page.jobs).toHaveLength(2);
        expect(typeof page.nextCursor).toBe('string');
      });

      it('when the cursor is malformed, then it throws VALIDATION_FAILED', async () => {
        const bad = [
          'not a cursor!',
          Buffer.from('garbage').toString('base64url'),
          Buffer.from('[1,2]').toString('base64url'),
        ];
        for (const cursor of bad) {
          await expect(store.queryJobs({ limit: 10, cursor })).rejects.toMatchObject({
            code: 'VALIDATION_FAILED',
            message: 'invalid cursor',
          });
        }
      });
    });

    describe('markDispatched and findJobsToRecover', () => {
      /** A window in the far past that only this test uses; its jobs are cancelled afterwards. */
      let base: number;
      let created: Job[];
      const at = (offsetInMs: number): string => new Date(base + offsetInMs).toISOString();
      const make = async (overrides: Partial<Job>): Promise<Job> => {
        const job = testJob(overrides);
        await store.createJobs([job]);
        created.push(job);
        return job;
      };
      const recover = async (query: Partial<RecoveryQuery>): Promise<Job[]> =>
        store.findJobsToRecover({
          undispatchedBefore: new Date(base + 60_000),
          heartbeatBefore: new Date(base + 60_000),
          limit: 1000,
          ...query,
        });
      const ids = (jobs: Job[]): string[] => jobs.map((j) => j.id).filter((id) => created.some((c) => c.id === id));

      beforeEach(() => {
        base = Date.UTC(1980, 0, 1) + Math.floor(Math.random() * 10 * YEAR_IN_MS);
        created = [];
      });
      afterEach(async () => {
        await cancelAll(store, created);
      });

      it('when a job needing a message was never dispatched and is old enough, then it is returned', async () => {
        const old = await make({ state: 'submitted', updatedAt: at(0) });
        const queued = await make({ state: 'queued', updatedAt: at(1) });
        const retrying = await make({ state: 'retrying', updatedAt: at(2) });
        const recent = await make({ state: 'queued', updatedAt: at(120_000) });

        const found = await recover({});

        expect(ids(found)).toStrictEqual([old.id, queued.id, retrying.id]);
        expect(found.find((j) => j.id === old.id)).toStrictEqual(old);
        expect(ids(found)).not.toContain(recent.id);
      });

      it('when a job was marked dispatched, then it is returned only if dispatched before dispatchedBefore', async () => {
        const job = await make({ state: 'queued', updatedAt: at(0) });
        await store.markDispatched([job.id, `missing-${randomUUID()}`], new Date(base + 10));

        expect(ids(await recover({}))).toStrictEqual([]);
        expect(ids(await recover({ dispatchedBefore: new Date(base + 10) }))).toStrictEqual([]);
        expect(ids(await recover({ dispatchedBefore: new Date(base + 20) }))).toStrictEqual([job.id]);
        expect(await store.getJob(job.id)).toStrictEqual(job);

        // Dispatching again takes it out of the next page.
        await store.markDispatched([job.id], new Date(base + 30));
        expect(ids(await recover({ dispatchedBefore: new Date(base + 20) }))).toStrictEqual([]);
      });

      it('when a dispatched job moves to a state needing a message, then it needs one again', async () => {
        const job = await make({ state: 'submitted', updatedAt: at(0) });
        await store.markDispatched([job.id], new Date(base + 10));

        const queued = await store.updateJob(
          { ...job, state: 'queued', updatedAt: at(20) },
          { ifVersion: job.version },
        );
        expect(ids(await recover({}))).toStrictEqual([job.id]);

        await store.markDispatched([job.id], new Date(base + 30));
        await store.updateJob({ ...queued!, batchTaskId: 'task-1' }, { ifVersion: queued!.version });
        expect(ids(await recover({}))).toStrictEqual([]);
      });

      it('when a running job has a stale heartbeat (or none and a stale start), then it is returned', async () => {
        const stale = await make({ state: 'running', updatedAt: at(0), heartbeatAt: at(1000) });
        const noBeat = await make({ state: 'running', updatedAt: at(2000), heartbeatAt: null });
        const fresh = await make({ state: 'running', updatedAt: at(0), heartbeatAt: at(120_000) });
        const freshStart = await make({ state: 'running', updatedAt: at(120_000), heartbeatAt: null });

        const found = ids(await recover({}));

        expect(found).toStrictEqual([stale.id, noBeat.id]);
        expect(found).not.toContain(fresh.id);
        expect(found).not.toContain(freshStart.id);
      });

      it('when a job is terminal, then it is never returned', async () => {
        for (const state of ['succeeded', 'failed', 'cancelled'] as const) {
          const job = await make({ state, updatedAt: at(0), heartbeatAt: at(0) });
          await store.markDispatched([job.id], new Date(base + 10));
        }
        expect(ids(await recover({ dispatchedBefore: new Date(base + 60_000) }))).toStrictEqual([]);
      });

      it('when more jobs match than the limit, then the oldest come first, up to the limit', async () => {
        const first = await make({ state: 'running', updatedAt: at(0), heartbeatAt: at(100) });
        const second = await make({ state: 'queued', updatedAt: at(200) });
        await make({ state: 'submitted', updatedAt: at(300) });

        const found = await recover({ limit: 2 });

        expect(found).toHaveLength(2);
        const staleness = found.map((j) =>
          Date.parse(j.state === 'running' ? (j.heartbeatAt ?? j.updatedAt) : j.updatedAt),
        );
        expect(staleness).toStrictEqual([...staleness].sort((a, b) => a - b));
        const all = ids(await recover({}));
        expect(all.slice(0, 2)).toStrictEqual([first.id, second.id]);
      });
    });

    describe('recordHeartbeat', () => {
      it('when given running, non-running and unknown ids, then it refreshes the running and returns the others', async () => {
        const running = testJob({ state: 'running' });
        const cancelled = testJob({ state: 'cancelled' });
        const queued = testJob({ state: 'queued' });
        await store.createJobs([running, cancelled, queued]);
        const unknown = `missing-${randomUUID()}`;
        const at = new Date('2026-11-22T15:30:00.456Z');

        const stop = await store.recordHeartbeat([running.id, cancelled.id, queued.id, unknown], at);

        expect([...stop].sort()).toStrictEqual([cancelled.id, queued.id, unknown].sort());
        expect(await store.getJob(running.id)).toStrictEqual({ ...running, heartbeatAt: at.toISOString() });
        expect(await store.getJob(queued.id)).toStrictEqual(queued);
        expect(await store.recordHeartbeat([], at)).toStrictEqual([]);
      });
    });

    describe('countByState', () => {
      it('when jobs are added in every state, then each count grows by the number added', async () => {
        const before = await store.countByState();
        expect(Object.keys(before).sort()).toStrictEqual([...JOB_STATES].sort());
        const jobs = JOB_STATES.flatMap((state, i) => Array.from({ length: i + 1 }, () => testJob({ state })));
        await store.createJobs(jobs);

        const after = await store.countByState();

        for (const [i, state] of JOB_STATES.entries()) expect(after[state] - before[state]).toBe(i + 1);
      });
    });

    describe('ping', () => {
      it('when the database is reachable, then ping resolves', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });
  });
}

/** A minimal `submitted` job: every nullable field null. */
function testJob(overrides: Partial<Job> = {}): Job {
  const at = overrides.createdAt ?? new Date().toISOString();
  return {
    id: `test-${randomUUID()}`,
    state: 'submitted',
    version: 1,
    priority: 'normal',
    rows: 1000,
    estimatedRuntimeSec: 10,
    latencySensitive: false,
    type: 'synthetic',
    data: {},
    decision: null,
    attempts: 0,
    maxAttempts: 3,
    error: null,
    resultKey: null,
    batchTaskId: null,
    createdAt: at,
    updatedAt: at,
    heartbeatAt: null,
    nextAttemptAt: null,
    history: [{ status: 'submitted', at }],
    ...overrides,
  };
}

/** A job with every field set, and values that trip up naive mappings. */
function fullJob(): Job {
  const id = `test-${randomUUID()}`;
  return testJob({
    id,
    state: 'retrying',
    version: 4,
    priority: 'urgent',
    rows: 1_000_000_000,
    estimatedRuntimeSec: 0.1,
    latencySensitive: true,
    data: { nested: { list: [1, 'two', null, true, 2.5] }, text: 'żółw 🐢 "quoted" \'single\'', empty: {} },
    decision: { queue: 'spark-jobs', cost: 1 / 3, reason: 'many rows' },
    attempts: 2,
    maxAttempts: 5,
    error: { code: 'HANDLER_FAILED', message: 'boom' },
    resultKey: `results/${id}.json`,
    batchTaskId: 'task-17',
    createdAt: '2026-11-22T15:00:00.001Z',
    updatedAt: '2026-11-22T15:00:09.999Z',
    heartbeatAt: '2026-11-22T15:00:08.120Z',
    nextAttemptAt: '2026-11-22T15:01:00.000Z',
    history: [
      { status: 'submitted', at: '2026-11-22T15:00:00.001Z' },
      { status: 'queued', at: '2026-11-22T15:00:00.500Z' },
      { status: 'running', at: '2026-11-22T15:00:01.000Z' },
      { status: 'retrying', at: '2026-11-22T15:00:09.999Z', note: 'attempt 2 failed: boom' },
    ],
  });
}

const sortById = (jobs: Job[]): Job[] => [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

function newestFirst(a: Job, b: Job): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Leaves no live job behind, so a shared database's recovery queries are not crowded by old tests. */
async function cancelAll(store: JobStore, jobs: readonly Job[]): Promise<void> {
  for (const job of await store.getJobs(jobs.map((j) => j.id))) {
    if (!isTerminal(job.state)) await store.updateJob({ ...job, state: 'cancelled' }, { ifVersion: job.version });
  }
}
