import { randomUUID } from 'node:crypto';
import {
  JOB_STATES,
  isTerminal,
  type IdempotencyRecord,
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

      it('given jobs of two tenants, when one tenant is queried, then only its jobs are listed, and its live ones counted', async () => {
        const a = `tenant-a-${randomUUID()}`;
        const b = `tenant-b-${randomUUID()}`;
        const queued = { queue: 'actor-jobs', cost: 1, reason: 'r' } as const;
        const jobs = [
          testJob({ tenant: a }),
          testJob({ tenant: a, state: 'running', decision: queued }),
          testJob({ tenant: a, state: 'succeeded', decision: queued }),
          testJob({ tenant: b }),
        ];
        await store.createJobs(jobs);

        const page = await store.queryJobs({ tenant: a, limit: 10 });
        expect(sortById(page.jobs).map((j) => j.id)).toStrictEqual(sortById(jobs.slice(0, 3)).map((j) => j.id));
        expect(page.jobs.every((j) => j.tenant === a)).toBe(true);
        const running = await store.queryJobs({ tenant: a, state: 'running', limit: 10 });
        expect(running.jobs.map((j) => j.id)).toStrictEqual([jobs[1]!.id]);

        expect(await store.countLiveJobs(a)).toBe(2);
        expect(await store.countLiveJobs(b)).toBe(1);
        expect(await store.countLiveJobs(`nobody-${randomUUID()}`)).toBe(0);
        // The tenant never changes, whatever an update carries.
        const updated = await store.updateJob({ ...jobs[3]!, tenant: a, state: 'cancelled' }, { ifVersion: 1 });
        expect(updated?.tenant).toBe(b);
        await cancelAll(store, jobs);
      });

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

      it('when a mark is not awaited and the store is closed, then the mark is written first', async () => {
        const job = await make({ state: 'queued', updatedAt: at(0) });
        void store.markDispatched([job.id], new Date(base + 10));
        await store.close();

        store = await create();
        expect(ids(await recover({}))).toStrictEqual([]);
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

      it('given jobs of two tenants, when one tenant is asked for, then only its jobs are counted', async () => {
        const [a, b] = [`tenant-a-${randomUUID()}`, `tenant-b-${randomUUID()}`];
        const none = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;
        const before = await store.countByState();
        const jobs = [
          testJob({ tenant: a }),
          testJob({ tenant: a, state: 'running' }),
          testJob({ tenant: a, state: 'succeeded' }),
          testJob({ tenant: b, state: 'running' }),
          testJob({ tenant: b, state: 'failed' }),
          testJob({ tenant: b, state: 'failed' }),
        ];
        await store.createJobs(jobs);

        expect(await store.countByState({ tenant: a })).toStrictEqual({
          ...none,
          submitted: 1,
          running: 1,
          succeeded: 1,
        });
        expect(await store.countByState({ tenant: b })).toStrictEqual({ ...none, running: 1, failed: 2 });
        expect(await store.countByState({ tenant: `nobody-${randomUUID()}` })).toStrictEqual(none);
        const after = await store.countByState({});
        const added = { ...none, submitted: 1, running: 2, succeeded: 1, failed: 2 };
        for (const state of JOB_STATES) expect(after[state] - before[state], state).toBe(added[state]);
        await cancelAll(store, jobs);
      });
    });

    describe('concurrent calls (stores may group them into one statement)', () => {
      it('when many jobs are created, read and updated at once, then each call gets its own outcome', async () => {
        const jobs = Array.from({ length: 200 }, () => testJob());
        await Promise.all(jobs.map((job) => store.createJobs([job])));

        const read = await Promise.all(jobs.map((job) => store.getJob(job.id)));
        expect(read).toStrictEqual(jobs);

        const at = new Date().toISOString();
        const updated = await Promise.all(
          jobs.map((job, i) =>
            store.updateJob({ ...job, state: 'queued', attempts: i, updatedAt: at }, { ifVersion: job.version }),
          ),
        );
        expect(updated.map((job) => job?.attempts)).toStrictEqual(jobs.map((_, i) => i));
        expect(updated.every((job) => job?.version === 2)).toBe(true);
      });

      it('when two updates of one job race from the same version, then exactly one wins', async () => {
        const job = testJob();
        await store.createJobs([job]);

        const outcomes = await Promise.all([
          store.updateJob({ ...job, state: 'queued', attempts: 1 }, { ifVersion: job.version }),
          store.updateJob({ ...job, state: 'cancelled', attempts: 2 }, { ifVersion: job.version }),
        ]);

        const winners = outcomes.filter((o) => o !== undefined);
        expect(winners).toHaveLength(1);
        expect(await store.getJob(job.id)).toStrictEqual(winners[0]);
      });

      it('when concurrent creates include one conflicting id, then only that call fails', async () => {
        const existing = testJob();
        await store.createJobs([existing]);
        const fresh = Array.from({ length: 20 }, () => testJob());

        const results = await Promise.allSettled([
          ...fresh.map((job) => store.createJobs([job])),
          store.createJobs([testJob(), { ...testJob(), id: existing.id }]),
        ]);

        expect(results.slice(0, 20).every((r) => r.status === 'fulfilled')).toBe(true);
        const last = results[20];
        expect(last?.status).toBe('rejected');
        expect(last?.status === 'rejected' && (last.reason as { code?: string }).code).toBe('CONFLICT');
        expect(await store.getJobs(fresh.map((j) => j.id))).toHaveLength(20);
      });

      it('when many dispatches are marked at once, then recovery no longer returns those jobs', async () => {
        const old = new Date(Date.parse('1990-01-01T00:00:00Z') + Math.floor(Math.random() * 1e9)).toISOString();
        const jobs = Array.from({ length: 50 }, () => testJob({ createdAt: old, updatedAt: old }));
        await store.createJobs(jobs);

        await Promise.all(jobs.map((job) => store.markDispatched([job.id], new Date())));

        const recovered = await store.findJobsToRecover({
          undispatchedBefore: new Date(Date.parse(old) + 1),
          heartbeatBefore: new Date(0),
          limit: 10_000,
        });
        const ids = new Set(jobs.map((j) => j.id));
        expect(recovered.filter((j) => ids.has(j.id))).toStrictEqual([]);
      });
    });

    describe('idempotency keys', () => {
      const record = (overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord => {
        const now = Date.now();
        return {
          tenant: 'tenant-a',
          key: `key-${randomUUID()}`,
          requestHash: 'hash-1',
          jobIds: [],
          createdAt: new Date(now).toISOString(),
          expiresAt: new Date(now + 60_000).toISOString(),
          ...overrides,
        };
      };

      it('when jobs are created with a key, then the record reads back until it expires', async () => {
        const job = testJob();
        const claim = record({ jobIds: [job.id] });
        await store.createJobs([job], { idempotency: claim });

        expect(await store.getIdempotencyRecord(claim.tenant, claim.key, new Date())).toStrictEqual(claim);
        expect(await store.getIdempotencyRecord('tenant-b', claim.key, new Date())).toBeUndefined();
        expect(
          await store.getIdempotencyRecord(claim.tenant, claim.key, new Date(Date.parse(claim.expiresAt))),
        ).toBeUndefined();
      });

      it('when the key is live, then a second create with it writes nothing and says IDEMPOTENCY_KEY_IN_USE', async () => {
        const first = record();
        await store.createJobs([testJob()], { idempotency: first });
        const second = testJob();

        await expect(
          store.createJobs([second], { idempotency: { ...first, requestHash: 'hash-2' } }),
        ).rejects.toMatchObject({
          code: 'IDEMPOTENCY_KEY_IN_USE',
        });
        expect(await store.getJob(second.id)).toBeUndefined();
        expect((await store.getIdempotencyRecord(first.tenant, first.key, new Date()))?.requestHash).toBe('hash-1');
      });

      it('when racing creates use one key, then exactly one succeeds', async () => {
        const key = `key-${randomUUID()}`;
        const jobs = Array.from({ length: 5 }, () => testJob());
        const results = await Promise.allSettled(
          jobs.map((job) => store.createJobs([job], { idempotency: record({ key, jobIds: [job.id] }) })),
        );

        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((await store.getJobs(jobs.map((j) => j.id))).length).toBe(1);
      });

      it('when the key has expired, then it can be used again and other tenants never collide', async () => {
        const past = Date.now() - 120_000;
        const old = record({
          createdAt: new Date(past).toISOString(),
          expiresAt: new Date(past + 1_000).toISOString(),
        });
        await store.createJobs([testJob()], { idempotency: old });

        const again = record({ key: old.key, requestHash: 'hash-again' });
        await store.createJobs([testJob()], { idempotency: again });
        await store.createJobs([testJob()], { idempotency: { ...again, tenant: 'tenant-b' } });

        expect((await store.getIdempotencyRecord(old.tenant, old.key, new Date()))?.requestHash).toBe('hash-again');
        expect((await store.getIdempotencyRecord('tenant-b', old.key, new Date()))?.requestHash).toBe('hash-again');
      });
    });

    describe('getActivity', () => {
      // A random far-future window, so jobs of other tests and runs in a shared database stay out of it.
      const windowStart = () => Date.parse('2900-01-01T00:00:00Z') + Math.floor(Math.random() * 1e6) * 60_000;

      /**
       * Creates one job per run, a second apart from `t0`, starts each `latencyInMs` after its creation
       * and ends it with its outcome half a second later.
       */
      async function runJobs(
        t0: number,
        tenant: string,
        runs: readonly { latencyInMs: number; outcome: 'succeeded' | 'failed' | 'running' }[],
      ): Promise<void> {
        const iso = (offsetInMs: number) => new Date(t0 + offsetInMs).toISOString();
        const jobs = runs.map((_, i) => testJob({ tenant, createdAt: iso(i * 1000), updatedAt: iso(i * 1000) }));
        await store.createJobs(jobs);
        for (const [i, job] of jobs.entries()) {
          const { latencyInMs, outcome } = runs[i] ?? { latencyInMs: 0, outcome: 'running' };
          const startedAt = i * 1000 + latencyInMs;
          const running = await store.updateJob(
            { ...job, state: 'running', updatedAt: iso(startedAt) },
            { ifVersion: job.version },
          );
          if (!running) throw new Error('update lost');
          if (outcome === 'running') continue;
          // A retry that runs again must not move the first start.
          const again = await store.updateJob(
            { ...running, state: 'running', updatedAt: iso(startedAt + 50) },
            { ifVersion: running.version },
          );
          if (!again) throw new Error('update lost');
          await store.updateJob(
            { ...again, state: outcome, updatedAt: iso(startedAt + 500) },
            { ifVersion: again.version },
          );
        }
      }

      it('when jobs start and finish after `since`, then it counts them and gives their dispatch latency', async () => {
        const t0 = windowStart();
        await runJobs(t0, '', [
          { latencyInMs: 100, outcome: 'succeeded' },
          { latencyInMs: 200, outcome: 'succeeded' },
          { latencyInMs: 300, outcome: 'failed' },
          { latencyInMs: 400, outcome: 'running' },
        ]);

        const activity = await store.getActivity(new Date(t0));

        expect(activity.succeeded).toBe(2);
        expect(activity.failed).toBe(1);
        expect(activity.started).toBe(4);
        expect(activity.dispatchLatencyInMs?.p50).toBeCloseTo(250, 6);
        expect(activity.dispatchLatencyInMs?.p95).toBeGreaterThan(300);
        expect(activity.dispatchLatencyInMs?.p99).toBeLessThanOrEqual(400);
        const later = await store.getActivity(new Date(t0 + 10_000));
        expect(later).toStrictEqual({ succeeded: 0, failed: 0, started: 0, dispatchLatencyInMs: null });
      });

      it('given jobs of two tenants, when one tenant is asked for, then only its jobs count', async () => {
        const t0 = windowStart();
        const [a, b] = [`tenant-a-${randomUUID()}`, `tenant-b-${randomUUID()}`];
        const since = new Date(t0);
        // Other tests' far-future jobs may fall after `since` too: every tenant's counts only grow by ours.
        const allBefore = await store.getActivity(since);
        await runJobs(t0, a, [
          { latencyInMs: 100, outcome: 'succeeded' },
          { latencyInMs: 300, outcome: 'failed' },
        ]);
        await runJobs(t0, b, [
          { latencyInMs: 1000, outcome: 'succeeded' },
          { latencyInMs: 2000, outcome: 'succeeded' },
          { latencyInMs: 3000, outcome: 'running' },
        ]);

        const [ofA, ofB, ofAll] = [
          await store.getActivity(since, { tenant: a }),
          await store.getActivity(since, { tenant: b }),
          await store.getActivity(since, {}),
        ];

        expect(ofA).toMatchObject({ succeeded: 1, failed: 1, started: 2 });
        expect(ofA.dispatchLatencyInMs?.p50).toBeCloseTo(200, 6);
        expect(ofA.dispatchLatencyInMs?.p99).toBeLessThanOrEqual(300);
        expect(ofB).toMatchObject({ succeeded: 2, failed: 0, started: 3 });
        expect(ofB.dispatchLatencyInMs?.p50).toBeCloseTo(2000, 6);
        expect(ofB.dispatchLatencyInMs?.p95).toBeGreaterThan(2000);
        expect({
          succeeded: ofAll.succeeded - allBefore.succeeded,
          failed: ofAll.failed - allBefore.failed,
          started: ofAll.started - allBefore.started,
        }).toStrictEqual({ succeeded: 3, failed: 1, started: 5 });
        expect(await store.getActivity(since, { tenant: `nobody-${randomUUID()}` })).toStrictEqual({
          succeeded: 0,
          failed: 0,
          started: 0,
          dispatchLatencyInMs: null,
        });
      });
    });

    describe('workers', () => {
      it('when workers record their presence, then they are listed until removed or stale', async () => {
        const now = Date.now();
        const worker = (n: number, seenAt: number) => ({
          id: `worker-${randomUUID()}`,
          pool: n % 2 ? ('spark-jobs' as const) : ('actor-jobs' as const),
          concurrency: 4,
          inFlight: n,
          seenAt: new Date(seenAt).toISOString(),
        });
        const fresh = worker(1, now);
        const stale = worker(2, now - 60_000);
        await store.recordWorker(fresh);
        await store.recordWorker(stale);
        await store.recordWorker({ ...fresh, inFlight: 3 });

        const listed = (await store.listWorkers(new Date(now - 1000))).filter((w) =>
          [fresh.id, stale.id].includes(w.id),
        );
        expect(listed).toStrictEqual([{ ...fresh, inFlight: 3 }]);

        await store.removeWorker(fresh.id);
        await store.removeWorker(fresh.id);
        await store.removeWorker(stale.id);
        const remaining = await store.listWorkers(new Date(now - 120_000));
        expect(remaining.filter((w) => [fresh.id, stale.id].includes(w.id))).toStrictEqual([]);
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
    tenant: '',
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
    tenant: 'tenant-żółw',
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
