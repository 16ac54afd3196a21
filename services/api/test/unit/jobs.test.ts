import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resultKeyFor } from '@orch/core';
import type { JobState } from '@orch/core';
import type { ApiDeps } from '../../src/index.ts';
import { advanceJob, createBackends, createTestApp, json, postJson, withOverrides } from './support.ts';
import type { Backends, TestApp } from './support.ts';

const VIEW_KEYS = [
  'attempts',
  'cost',
  'created_at',
  'data',
  'error',
  'estimated_runtime_sec',
  'history',
  'job_id',
  'latency_sensitive',
  'max_attempts',
  'priority',
  'queue',
  'reason',
  'result_url',
  'rows',
  'status',
  'type',
  'updated_at',
];

let backends: Backends;
let current: TestApp | undefined;

beforeAll(async () => {
  backends = await createBackends();
});
afterAll(() => backends.close());
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(overrides: Partial<ApiDeps> = {}): Promise<TestApp> {
  current = await createTestApp(backends, overrides);
  return current;
}

/** Submits a job through the API and moves it along `path` in the store. */
async function jobIn(
  app: TestApp['app'],
  path: readonly JobState[],
  body: Record<string, unknown> = {},
): Promise<string> {
  const response = await postJson(app, '/jobs', body);
  expect(response.statusCode).toBe(202);
  const id = json(response)['job_id'] as string;
  await advanceJob(backends.store, id, path);
  return id;
}

describe('GET /jobs/{id}', () => {
  it('shows a submitted job with every field, unclassified', async () => {
    const now = new Date('2031-05-06T07:08:09.000Z');
    const { app } = await start({ clock: () => now });
    const id = await jobIn(app, [], {
      rows: 42,
      estimated_runtime_sec: 1.5,
      priority: 'low',
      latency_sensitive: true,
      data: { a: [1] },
    });

    const response = await app.inject({ method: 'GET', url: `/jobs/${id}` });

    expect(response.statusCode).toBe(200);
    const view = json(response);
    expect(Object.keys(view).sort()).toEqual(VIEW_KEYS);
    expect(view).toEqual({
      job_id: id,
      status: 'submitted',
      queue: null,
      cost: null,
      reason: null,
      priority: 'low',
      rows: 42,
      estimated_runtime_sec: 1.5,
      latency_sensitive: true,
      type: 'synthetic',
      data: { a: [1] },
      attempts: 0,
      max_attempts: 3,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      history: [{ status: 'submitted', at: now.toISOString() }],
      error: null,
      result_url: null,
    });
  });

  it('shows the route decision once classified, and the result URL once succeeded', async () => {
    const { app } = await start();
    const id = await jobIn(app, ['queued', 'running', 'succeeded']);

    const view = json(await app.inject({ method: 'GET', url: `/jobs/${id}` }));

    expect(view).toMatchObject({
      status: 'succeeded',
      queue: 'batch-jobs',
      cost: 1.5,
      reason: 'cost 1.5 <= 4',
      attempts: 1,
    });
    expect(view['result_url']).toBe(`/jobs/${id}/result`);
    expect((view['history'] as { status: string }[]).map((t) => t.status)).toEqual([
      'submitted',
      'queued',
      'running',
      'succeeded',
    ]);
  });

  it('shows the error of a failed job', async () => {
    const { app } = await start();
    const id = await jobIn(app, ['queued', 'running', 'failed']);
    const view = json(await app.inject({ method: 'GET', url: `/jobs/${id}` }));
    expect(view).toMatchObject({
      status: 'failed',
      error: { code: 'HANDLER_FAILED', message: 'boom' },
      result_url: null,
    });
  });

  it('is 404 JOB_NOT_FOUND for an unknown id', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/jobs/does-not-exist' });
    expect(response.statusCode).toBe(404);
    expect(json(response)).toEqual({ code: 'JOB_NOT_FOUND', message: 'job does-not-exist not found' });
  });

  it.each([
    ['a dot', 'a.b'],
    ['a space', 'a%20b'],
    ['an encoded slash', 'a%2Fb'],
    ['quotes', '%27%22'],
    ['101 characters', 'x'.repeat(101)],
    ['2000 characters', 'x'.repeat(2000)],
    ['a malformed escape', '%zz'],
    ['non-ASCII', '%C3%A9'],
  ])('an id with %s is a 404, never a 500', async (_name, id) => {
    const calls: string[] = [];
    const store = withOverrides(backends.store, {
      getJob(jobId) {
        calls.push(jobId);
        return backends.store.getJob(jobId);
      },
    });
    const { app } = await start({ store });
    for (const url of [`/jobs/${id}`, `/jobs/${id}/result`]) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(404);
      expect(json(response)['code']).toMatch(/^(JOB|ROUTE)_NOT_FOUND$/);
    }
    const cancel = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });
    expect(cancel.statusCode).toBe(404);
    expect(calls).toEqual([]);
  });
});

describe('GET /jobs', () => {
  it('pages through jobs newest first with next_cursor', async () => {
    let tick = Date.parse('2032-01-01T00:00:00.000Z');
    const { app } = await start({ clock: () => new Date((tick += 1000)) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await jobIn(app, [], { rows: i, type: 'echo' }));

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const response = await app.inject({ method: 'GET', url: `/jobs?limit=2&status=submitted${query}` });
      expect(response.statusCode).toBe(200);
      const page = json(response);
      expect(Object.keys(page).sort()).toEqual(['jobs', 'next_cursor']);
      const jobs = page['jobs'] as Record<string, unknown>[];
      expect(jobs.length).toBeLessThanOrEqual(2);
      for (const job of jobs) expect(Object.keys(job).sort()).toEqual(VIEW_KEYS);
      seen.push(...jobs.map((j) => j['job_id'] as string));
      cursor = page['next_cursor'] as string | null;
      pages++;
    } while (cursor !== null && pages < 100);

    // Newest first: the five jobs of this test come first, in reverse order of creation.
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters by status and by queue', async () => {
    const { app } = await start();
    const queued = await jobIn(app, ['queued']);
    const cancelled = await jobIn(app, ['cancelled']);

    const byStatus = json(await app.inject({ method: 'GET', url: '/jobs?status=cancelled&limit=500' }));
    const statusIds = (byStatus['jobs'] as { job_id: string; status: string }[]).map((j) => j.job_id);
    expect(statusIds).toContain(cancelled);
    expect(statusIds).not.toContain(queued);
    expect((byStatus['jobs'] as { status: string }[]).every((j) => j.status === 'cancelled')).toBe(true);

    const byQueue = json(await app.inject({ method: 'GET', url: '/jobs?queue=batch-jobs&limit=500' }));
    const queueIds = (byQueue['jobs'] as { job_id: string }[]).map((j) => j.job_id);
    expect(queueIds).toContain(queued);
    expect(queueIds).not.toContain(cancelled);

    const none = json(await app.inject({ method: 'GET', url: '/jobs?queue=spark-jobs' }));
    expect(none).toEqual({ jobs: [], next_cursor: null });
  });

  it('defaults to 50 per page', async () => {
    const { app } = await start();
    await postJson(app, '/jobs/batch', { jobs: Array.from({ length: 60 }, () => ({})) });
    const page = json(await app.inject({ method: 'GET', url: '/jobs' }));
    expect(page['jobs']).toHaveLength(50);
    expect(page['next_cursor']).toEqual(expect.any(String));
  });

  it.each([
    ['status=done', 'status'],
    ['queue=gpu-jobs', 'queue'],
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=-3', 'limit'],
  ])('?%s is 400 VALIDATION_FAILED naming %s', async (query, field) => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: `/jobs?${query}` });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
    expect(json(response)['details']).toEqual([expect.objectContaining({ path: field })]);
  });

  it('a cursor the store cannot read is 400 VALIDATION_FAILED', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/jobs?cursor=not-a-cursor' });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
  });
});

describe('GET /jobs/{id}/result', () => {
  it('returns the stored result JSON of a succeeded job', async () => {
    const { app } = await start();
    const id = await jobIn(app, ['queued', 'running', 'succeeded']);
    const result = { job_id: id, sum: 123, nested: { ok: true }, list: [1, 2] };
    await backends.blobs.uploadBlob(resultKeyFor(id), JSON.stringify(result), { contentType: 'application/json' });

    const response = await app.inject({ method: 'GET', url: `/jobs/${id}/result` });

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual(result);
  });

  it('is 404 JOB_NOT_FOUND for an unknown job', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/jobs/nope/result' });
    expect(response.statusCode).toBe(404);
    expect(json(response)['code']).toBe('JOB_NOT_FOUND');
  });

  it.each<[string, JobState[]]>([
    ['submitted', []],
    ['queued', ['queued']],
    ['running', ['queued', 'running']],
    ['retrying', ['queued', 'running', 'retrying']],
  ])('is 409 JOB_NOT_FINISHED while %s', async (state, path) => {
    const { app } = await start();
    const id = await jobIn(app, path);
    const response = await app.inject({ method: 'GET', url: `/jobs/${id}/result` });
    expect(response.statusCode).toBe(409);
    expect(json(response)['code']).toBe('JOB_NOT_FINISHED');
    expect(json(response)['message']).toContain(state);
  });

  it.each<[string, JobState[]]>([
    ['failed', ['queued', 'running', 'failed']],
    ['cancelled', ['cancelled']],
  ])('is 409 JOB_NOT_SUCCEEDED when %s', async (state, path) => {
    const { app } = await start();
    const id = await jobIn(app, path);
    const response = await app.inject({ method: 'GET', url: `/jobs/${id}/result` });
    expect(response.statusCode).toBe(409);
    expect(json(response)['code']).toBe('JOB_NOT_SUCCEEDED');
    expect(json(response)['message']).toContain(state);
  });

  it('is a 500 INTERNAL (not a 404) when a succeeded job has no result blob', async () => {
    const { app } = await start();
    const id = await jobIn(app, ['queued', 'running', 'succeeded']);
    const response = await app.inject({ method: 'GET', url: `/jobs/${id}/result` });
    expect(response.statusCode).toBe(500);
    expect(json(response)).toEqual({ code: 'INTERNAL', message: 'internal error' });
  });
});

describe('POST /jobs/{id}/cancel', () => {
  it('cancels a queued job: 200 with the view, recorded in history and stored', async () => {
    const { app } = await start();
    const id = await jobIn(app, ['queued']);

    const response = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });

    expect(response.statusCode).toBe(200);
    const view = json(response);
    expect(Object.keys(view).sort()).toEqual(VIEW_KEYS);
    expect(view['status']).toBe('cancelled');
    const history = view['history'] as { status: string; note?: string }[];
    expect(history.map((t) => t.status)).toEqual(['submitted', 'queued', 'cancelled']);
    expect(history.at(-1)).toEqual({
      status: 'cancelled',
      at: expect.any(String) as string,
      note: 'cancelled by request',
    });
    expect((await backends.store.getJob(id))?.state).toBe('cancelled');
  });

  it.each<[JobState, JobState[]]>([
    ['submitted', []],
    ['running', ['queued', 'running']],
    ['retrying', ['queued', 'running', 'retrying']],
  ])('cancels a %s job', async (_state, path) => {
    const { app } = await start();
    const id = await jobIn(app, path);
    const response = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });
    expect(response.statusCode).toBe(200);
    expect(json(response)['status']).toBe('cancelled');
  });

  it.each<[JobState, JobState[]]>([
    ['succeeded', ['queued', 'running', 'succeeded']],
    ['failed', ['queued', 'running', 'failed']],
    ['cancelled', ['cancelled']],
  ])('a %s job is 409 INVALID_TRANSITION naming its status, and is left alone', async (state, path) => {
    const { app } = await start();
    const id = await jobIn(app, path);
    const before = await backends.store.getJob(id);

    const response = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });

    expect(response.statusCode).toBe(409);
    expect(json(response)['code']).toBe('INVALID_TRANSITION');
    expect(json(response)['message']).toContain(state);
    expect(await backends.store.getJob(id)).toEqual(before);
  });

  it('is 404 JOB_NOT_FOUND for an unknown job', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'POST', url: '/jobs/unknown-job/cancel' });
    expect(response.statusCode).toBe(404);
    expect(json(response)['code']).toBe('JOB_NOT_FOUND');
  });

  it('re-reads and retries when it loses a race with another update', async () => {
    let raced = false;
    const store = withOverrides(backends.store, {
      async updateJob(job, options) {
        if (!raced) {
          raced = true;
          // Another writer (the scheduler) moves the job first, so this compare-and-set fails.
          await advanceJob(backends.store, job.id, ['queued']);
        }
        return backends.store.updateJob(job, options);
      },
    });
    const { app } = await start({ store });
    const id = await jobIn(app, []);

    const response = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });

    expect(response.statusCode).toBe(200);
    expect((json(response)['history'] as { status: string }[]).map((t) => t.status)).toEqual([
      'submitted',
      'queued',
      'cancelled',
    ]);
  });

  it('gives up with 409 CONFLICT when every attempt loses', async () => {
    let attempts = 0;
    const store = withOverrides(backends.store, {
      updateJob() {
        attempts++;
        return Promise.resolve(undefined);
      },
    });
    const { app } = await start({ store });
    const id = await jobIn(app, ['queued']);

    const response = await app.inject({ method: 'POST', url: `/jobs/${id}/cancel` });

    expect(response.statusCode).toBe(409);
    expect(json(response)['code']).toBe('CONFLICT');
    expect(attempts).toBeGreaterThan(1);
    expect((await backends.store.getJob(id))?.state).toBe('queued');
  });
});
