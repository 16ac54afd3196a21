import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_QUEUE, MAX_BATCH_SIZE, OrchestratorError, ingestLaneOf } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import { createMemoryTransport } from '@orch/platform/memory';
import {
  createBackends,
  createTestApp,
  ingestDepth,
  isMarkedDispatched,
  json,
  postJson,
  totalJobs,
  withOverrides,
} from './support.ts';
import type { ApiDeps, ApiOptions } from '../../src/index.ts';
import type { Backends, TestApp } from './support.ts';

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

async function start(overrides: Partial<ApiDeps> = {}, options: Partial<ApiOptions> = {}): Promise<TestApp> {
  current = await createTestApp(backends, overrides, options);
  return current;
}

describe('POST /submit-job and POST /jobs', () => {
  it.each(['/submit-job', '/jobs'])(
    '%s accepts a job: 202, Location, stored, published, marked dispatched',
    async (url) => {
      let n = 0;
      const now = new Date('2030-01-02T03:04:05.678Z');
      const { app, transport } = await start({ newId: () => `${url.slice(1)}-${++n}-${Date.now()}`, clock: () => now });
      const body = {
        rows: 5_000_000,
        estimated_runtime_sec: 100,
        priority: 'high',
        latency_sensitive: false,
        type: 'echo',
        data: { k: 'v' },
      };

      const response = await postJson(app, url, body);

      expect(response.statusCode).toBe(202);
      const accepted = json(response);
      expect(Object.keys(accepted).sort()).toEqual(['job_id', 'status']);
      expect(accepted['status']).toBe('submitted');
      const id = accepted['job_id'] as string;
      expect(response.headers['location']).toBe(`/jobs/${id}`);
      expect(response.headers['content-type']).toMatch(/^application\/json/);

      const stored = await backends.store.getJob(id);
      expect(stored).toMatchObject({
        id,
        state: 'submitted',
        rows: 5_000_000,
        estimatedRuntimeSec: 100,
        priority: 'high',
        latencySensitive: false,
        type: 'echo',
        data: { k: 'v' },
        maxAttempts: 3,
        attempts: 0,
        createdAt: now.toISOString(),
      });
      // A high-priority submission takes the ingest queue's high lane.
      expect(await transport.getQueueDepth(ingestLaneOf('high'))).toEqual({ active: 1, scheduled: 0, deadLetter: 0 });
      // The mark is bookkeeping written shortly after the answer.
      await expect.poll(() => isMarkedDispatched(backends.store, id)).toBe(true);
    },
  );

  it('treats an absent body without content-type as all defaults, with maxAttempts from the options', async () => {
    const { app } = await start({}, { maxAttempts: 5 });

    const response = await app.inject({ method: 'POST', url: '/submit-job' });

    expect(response.statusCode).toBe(202);
    const id = json(response)['job_id'] as string;
    const view = json(await app.inject({ method: 'GET', url: `/jobs/${id}` }));
    expect(view).toMatchObject({
      rows: 1000,
      estimated_runtime_sec: 10,
      priority: 'normal',
      latency_sensitive: false,
      type: 'synthetic',
      data: {},
      max_attempts: 5,
      status: 'submitted',
    });
  });

  it('accepts an empty JSON object as all defaults', async () => {
    const { app } = await start();
    const response = await postJson(app, '/jobs', {});
    expect(response.statusCode).toBe(202);
  });

  it('uses crypto.randomUUID ids by default', async () => {
    const { app } = await start();
    const response = await postJson(app, '/jobs', {});
    expect(json(response)['job_id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('invalid submissions are 400 VALIDATION_FAILED naming the field, and touch nothing', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['explicit null rows', { rows: null }, 'rows'],
    ['explicit null priority', { priority: null }, 'priority'],
    ['explicit null data', { data: null }, 'data'],
    ['rows as a string', { rows: '1000' }, 'rows'],
    ['negative rows', { rows: -1 }, 'rows'],
    ['non-integer rows', { rows: 1.5 }, 'rows'],
    ['negative runtime', { estimated_runtime_sec: -0.1 }, 'estimated_runtime_sec'],
    ['latency_sensitive as a string', { latency_sensitive: 'yes' }, 'latency_sensitive'],
    ['unknown priority', { priority: 'critical' }, 'priority'],
    ['unknown type', { type: 'no-such-handler' }, 'type'],
    ['type of the wrong shape', { type: 'Not A Name' }, 'type'],
    ['data as an array', { data: [1, 2] }, 'data'],
    ['unknown field', { rowz: 10 }, 'rowz'],
  ];

  it.each(cases)('%s', async (_name, body, field) => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);

    const response = await postJson(app, '/submit-job', body);

    expect(response.statusCode).toBe(400);
    const error = json(response);
    expect(error['code']).toBe('VALIDATION_FAILED');
    expect(error['message']).toContain(field);
    expect(error['details']).toEqual(expect.arrayContaining([expect.objectContaining({ path: field })]));
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);
  });

  it('reports every issue at once', async () => {
    const { app } = await start();
    const response = await postJson(app, '/jobs', { rows: -1, priority: 'x', extra: true });
    const paths = (json(response)['details'] as { path: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(['extra', 'priority', 'rows']);
  });

  it('rejects a JSON null body', async () => {
    const { app, transport } = await start();
    const response = await app.inject({
      method: 'POST',
      url: '/jobs',
      payload: 'null',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
    expect(await ingestDepth(transport)).toBe(0);
  });

  it('rejects a JSON array body', async () => {
    const { app } = await start();
    const response = await postJson(app, '/jobs', [{ rows: 1 }]);
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
  });
});

describe('bodies that are not acceptable JSON', () => {
  it('invalid JSON is 400 INVALID_JSON', async () => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);
    const response = await app.inject({
      method: 'POST',
      url: '/submit-job',
      payload: '{"rows": 1,',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(json(response)).toEqual({ code: 'INVALID_JSON', message: expect.any(String) as string });
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);
  });

  it('an empty body with a JSON content-type is 400 INVALID_JSON', async () => {
    const { app } = await start();
    const response = await app.inject({
      method: 'POST',
      url: '/submit-job',
      payload: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('INVALID_JSON');
  });

  it('a prototype-poisoning body is refused as INVALID_JSON', async () => {
    const { app } = await start();
    const response = await app.inject({
      method: 'POST',
      url: '/jobs',
      payload: '{"__proto__": {"rows": 1}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('INVALID_JSON');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'content-type %s is 415 UNSUPPORTED_MEDIA_TYPE',
    async (type) => {
      const { app, transport } = await start();
      const response = await app.inject({
        method: 'POST',
        url: '/submit-job',
        payload: 'rows=1',
        headers: { 'content-type': type },
      });
      expect(response.statusCode).toBe(415);
      expect(json(response)['code']).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(await ingestDepth(transport)).toBe(0);
    },
  );

  it('a body one byte over 1 MiB is 413 PAYLOAD_TOO_LARGE; one at the limit is accepted', async () => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);
    const sized = (bytes: number): string => {
      const envelope = JSON.stringify({ data: { pad: '' } });
      return JSON.stringify({ data: { pad: 'x'.repeat(bytes - envelope.length) } });
    };
    const limit = 1024 * 1024;

    const tooLarge = await app.inject({
      method: 'POST',
      url: '/jobs',
      payload: sized(limit + 1),
      headers: { 'content-type': 'application/json' },
    });
    expect(tooLarge.statusCode).toBe(413);
    expect(json(tooLarge)['code']).toBe('PAYLOAD_TOO_LARGE');
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);

    const atLimit = await app.inject({
      method: 'POST',
      url: '/jobs',
      payload: sized(limit),
      headers: { 'content-type': 'application/json' },
    });
    expect(atLimit.statusCode).toBe(202);
  });

  it('honours a configured body limit', async () => {
    const { app } = await start({}, { bodyLimitBytes: 64 });
    const response = await postJson(app, '/jobs', { data: { pad: 'x'.repeat(100) } });
    expect(response.statusCode).toBe(413);
    expect(json(response)['message']).toContain('64');
  });
});

describe('POST /jobs/batch', () => {
  it('creates all jobs with one sendBatch: 202 with ids in order', async () => {
    const { app, transport } = await start();
    const response = await postJson(app, '/jobs/batch', { jobs: [{ rows: 1 }, { priority: 'urgent' }, {}] });

    expect(response.statusCode).toBe(202);
    const body = json(response);
    expect(Object.keys(body).sort()).toEqual(['job_ids', 'status']);
    expect(body['status']).toBe('submitted');
    const ids = body['job_ids'] as string[];
    expect(ids).toHaveLength(3);
    const jobs = await backends.store.getJobs(ids);
    expect(new Map(jobs.map((j) => [j.id, j.rows])).get(ids[0]!)).toBe(1);
    expect(jobs.find((j) => j.id === ids[1])?.priority).toBe('urgent');
    expect(await ingestDepth(transport)).toBe(3);
    for (const id of ids) await expect.poll(() => isMarkedDispatched(backends.store, id)).toBe(true);
  });

  it('uses one createJobs, one sendBatch and one markDispatched', async () => {
    const calls: string[] = [];
    const transport = createMemoryTransport();
    const store = withOverrides(backends.store, {
      createJobs(jobs) {
        calls.push(`createJobs:${jobs.length}`);
        return backends.store.createJobs(jobs);
      },
      markDispatched(ids, at) {
        calls.push(`markDispatched:${ids.length}`);
        return backends.store.markDispatched(ids, at);
      },
    });
    const counting: QueueTransport = withOverrides(transport, {
      send: () => Promise.reject(new Error('send must not be used for a batch')),
      sendBatch(queue, messages) {
        calls.push(`sendBatch:${queue}:${messages.length}`);
        return transport.sendBatch(queue, messages);
      },
    });
    const { app } = await start({ store, transport: counting });

    const response = await postJson(app, '/jobs/batch', { jobs: [{}, {}, {}, {}] });

    expect(response.statusCode).toBe(202);
    expect(calls).toEqual(['createJobs:4', `sendBatch:${INGEST_QUEUE}:4`, 'markDispatched:4']);
  });

  it('with one bad job creates nothing and names the bad one', async () => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);

    const response = await postJson(app, '/jobs/batch', { jobs: [{}, { rows: -5 }, {}] });

    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
    expect(json(response)['details']).toEqual([expect.objectContaining({ path: 'jobs.1.rows' })]);
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);
  });

  it('with an unknown type in one job creates nothing', async () => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);
    const response = await postJson(app, '/jobs/batch', { jobs: [{}, {}, { type: 'nope' }] });
    expect(response.statusCode).toBe(400);
    expect(json(response)['details']).toEqual([expect.objectContaining({ path: 'jobs.2.type' })]);
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);
  });

  it.each([
    ['more than 1000 jobs', { jobs: Array.from({ length: MAX_BATCH_SIZE + 1 }, () => ({})) }, 'jobs'],
    ['no jobs', { jobs: [] }, 'jobs'],
    ['jobs missing', {}, 'jobs'],
    ['jobs not an array', { jobs: {} }, 'jobs'],
    ['an unknown top-level field', { jobs: [{}], extra: 1 }, 'extra'],
  ])('%s is 400 VALIDATION_FAILED', async (_name, body, field) => {
    const { app, transport } = await start();
    const before = await totalJobs(backends.store);
    const response = await postJson(app, '/jobs/batch', body);
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
    expect(json(response)['details']).toEqual(expect.arrayContaining([expect.objectContaining({ path: field })]));
    expect(await totalJobs(backends.store)).toBe(before);
    expect(await ingestDepth(transport)).toBe(0);
  });

  it('an absent body is 400, not a batch of defaults', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'POST', url: '/jobs/batch' });
    expect(response.statusCode).toBe(400);
    expect(json(response)['code']).toBe('VALIDATION_FAILED');
  });

  it('accepts exactly 1000 jobs', async () => {
    const { app, transport } = await start();
    const response = await postJson(app, '/jobs/batch', {
      jobs: Array.from({ length: MAX_BATCH_SIZE }, () => ({ rows: 1 })),
    });
    expect(response.statusCode).toBe(202);
    expect(json(response)['job_ids']).toHaveLength(MAX_BATCH_SIZE);
    expect(await ingestDepth(transport)).toBe(MAX_BATCH_SIZE);
  });
});

describe('when publishing fails, the job is still accepted', () => {
  it('a failing send still answers 202; the job exists as submitted and is left for the reconciler', async () => {
    const transport = createMemoryTransport();
    const down = () =>
      Promise.reject(new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'broker down', { retryable: true }));
    const failing = withOverrides(transport, { send: down, sendBatch: down });
    const { app } = await start({ transport: failing });

    const response = await postJson(app, '/submit-job', { rows: 7 });

    expect(response.statusCode).toBe(202);
    const id = json(response)['job_id'] as string;
    expect((await backends.store.getJob(id))?.state).toBe('submitted');
    expect(await isMarkedDispatched(backends.store, id)).toBe(false);
    await transport.close();
  });

  it('a failing sendBatch still answers 202 with every job stored', async () => {
    const transport = createMemoryTransport();
    const failing = withOverrides(transport, { sendBatch: () => Promise.reject(new Error('socket hang up')) });
    const { app } = await start({ transport: failing });

    const response = await postJson(app, '/jobs/batch', { jobs: [{}, {}] });

    expect(response.statusCode).toBe(202);
    const ids = json(response)['job_ids'] as string[];
    const jobs = await backends.store.getJobs(ids);
    expect(jobs.map((j) => j.state)).toEqual(['submitted', 'submitted']);
    for (const id of ids) expect(await isMarkedDispatched(backends.store, id)).toBe(false);
    await transport.close();
  });

  it('a failing markDispatched after a successful send still answers 202', async () => {
    const store = withOverrides(backends.store, { markDispatched: () => Promise.reject(new Error('db blip')) });
    const { app, transport } = await start({ store });
    const response = await postJson(app, '/jobs', {});
    expect(response.statusCode).toBe(202);
    expect(await ingestDepth(transport)).toBe(1);
  });

  it('a markDispatched that has not finished does not hold up the answer', async () => {
    const store = withOverrides(backends.store, { markDispatched: () => new Promise<void>(() => undefined) });
    const { app, transport } = await start({ store });
    const response = await postJson(app, '/jobs/batch', { jobs: [{}, {}] });
    expect(response.statusCode).toBe(202);
    expect(await ingestDepth(transport)).toBe(2);
  });

  it('a failing createJobs is a 500 and nothing is published', async () => {
    const store = withOverrides(backends.store, {
      createJobs: () => Promise.reject(new Error('duplicate key value violates unique constraint "jobs_pkey"')),
    });
    const { app, transport } = await start({ store });
    const response = await postJson(app, '/jobs', {});
    expect(response.statusCode).toBe(500);
    expect(json(response)).toEqual({ code: 'INTERNAL', message: 'internal error' });
    expect(await ingestDepth(transport)).toBe(0);
  });
});
