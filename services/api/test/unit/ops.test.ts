import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_QUEUE, OrchestratorError, POOL_QUEUES } from '@orch/core';
import { createMemoryTransport } from '@orch/platform/memory';
import type { ApiDeps } from '../../src/index.ts';
import { createBackends, createRecordingLogger, createTestApp, json, withOverrides } from './support.ts';
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

async function start(overrides: Partial<ApiDeps> = {}): Promise<TestApp> {
  current = await createTestApp(backends, overrides);
  return current;
}

const zero = { active: 0, scheduled: 0, dead_letter: 0 };

describe('GET /queues/status', () => {
  it('lists the ingest queue and every pool, pools summed over their lanes', async () => {
    const { app, transport } = await start();
    await transport.send(INGEST_QUEUE, { jobId: 'a' });
    await transport.send('batch-jobs', { jobId: 'b' });
    await transport.send('batch-jobs', { jobId: 'c' });
    await transport.send('batch-jobs-high', { jobId: 'd' });
    await transport.send('spark-jobs-high', { jobId: 'e' }, { delayInMs: 60_000 });

    const response = await app.inject({ method: 'GET', url: '/queues/status' });

    expect(response.statusCode).toBe(200);
    const queues = json(response)['queues'] as Record<string, unknown>;
    expect(Object.keys(queues).sort()).toEqual([INGEST_QUEUE, ...POOL_QUEUES].sort());
    expect(queues[INGEST_QUEUE]).toEqual({
      active: 1,
      scheduled: 0,
      dead_letter: 0,
      lanes: { high: zero, standard: { active: 1, scheduled: 0, dead_letter: 0 } },
    });
    expect(queues['batch-jobs']).toEqual({
      active: 3,
      scheduled: 0,
      dead_letter: 0,
      lanes: {
        high: { active: 1, scheduled: 0, dead_letter: 0 },
        standard: { active: 2, scheduled: 0, dead_letter: 0 },
      },
    });
    expect(queues['spark-jobs']).toEqual({
      active: 0,
      scheduled: 1,
      dead_letter: 0,
      lanes: { high: { active: 0, scheduled: 1, dead_letter: 0 }, standard: zero },
    });
    expect(queues['actor-jobs']).toEqual({ ...zero, lanes: { high: zero, standard: zero } });
  });

  it('is 503 DEPENDENCY_UNAVAILABLE, without the adapter message, when the transport is down', async () => {
    const transport = createMemoryTransport();
    const down = withOverrides(transport, {
      getQueueDepth: () =>
        Promise.reject(
          new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'amqp://user:s3cret@broker:5672 refused', {
            retryable: true,
          }),
        ),
    });
    const { app } = await start({ transport: down });

    const response = await app.inject({ method: 'GET', url: '/queues/status' });

    expect(response.statusCode).toBe(503);
    expect(json(response)['code']).toBe('DEPENDENCY_UNAVAILABLE');
    expect(response.body).not.toContain('s3cret');
    expect(response.body).not.toContain('amqp');
    await transport.close();
  });
});

describe('GET /stats', () => {
  it('counts jobs by status, moving as jobs are submitted', async () => {
    const { app } = await start();
    const counts = async () => {
      const response = await app.inject({ method: 'GET', url: '/stats' });
      expect(response.statusCode).toBe(200);
      return (json(response) as { jobs: Record<string, number> }).jobs;
    };
    const before = await counts();
    expect(Object.keys(before).sort()).toEqual(
      ['cancelled', 'failed', 'queued', 'retrying', 'running', 'submitted', 'succeeded'].sort(),
    );

    await app.inject({ method: 'POST', url: '/jobs/batch', payload: { jobs: [{}, {}, {}] } });

    expect(((await counts()).submitted ?? 0) - (before.submitted ?? 0)).toBe(3);
  });
});

describe('health and readiness', () => {
  it('GET /health is {"status":"healthy"}', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'healthy' });
  });

  it('GET /healthz is {"status":"ok"}', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 when the store and the transport answer', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', checks: { store: 'ok', transport: 'ok' } });
  });

  it('GET /readyz is 503 with the store marked failed when its ping fails, and leaks no error text', async () => {
    const { logger, entries } = createRecordingLogger();
    const store = withOverrides(backends.store, {
      ping: () => Promise.reject(new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'connect ECONNREFUSED 10.0.0.5:5432')),
    });
    const { app } = await start({ store, logger });

    const response = await app.inject({ method: 'GET', url: '/readyz' });

    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'not_ready', checks: { store: 'failed', transport: 'ok' } });
    expect(response.body).not.toContain('ECONNREFUSED');
    const warned = entries.filter((e) => e.level === 'warn').map((e) => (e.args[0] as { err?: Error }).err?.message);
    expect(warned).toContainEqual(expect.stringContaining('ECONNREFUSED'));
  });

  it('GET /readyz is 503 with the transport marked failed when it cannot report depth', async () => {
    const transport = createMemoryTransport();
    await transport.close();
    const down = withOverrides(transport, { getQueueDepth: () => Promise.reject(new Error('closed')) });
    const { app } = await start({ transport: down });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'not_ready', checks: { store: 'ok', transport: 'failed' } });
  });
});

interface Operation {
  summary?: string;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  parameters?: { in: string; name: string }[];
  requestBody?: { required?: boolean };
}

describe('OpenAPI and docs', () => {
  const expected: Record<string, Record<string, string[]>> = {
    '/submit-job': { post: ['202', '400', '401', '409', '413', '415', '429', '500', '503'] },
    '/jobs': {
      post: ['202', '400', '401', '409', '413', '415', '429', '500', '503'],
      get: ['200', '400', '401', '429', '500', '503'],
    },
    '/jobs/batch': { post: ['202', '400', '401', '409', '413', '415', '429', '500', '503'] },
    '/jobs/{id}': { get: ['200', '401', '404', '429', '500', '503'] },
    '/jobs/{id}/result': { get: ['200', '401', '404', '409', '429', '500', '503'] },
    '/jobs/{id}/cancel': { post: ['200', '400', '401', '404', '409', '413', '415', '429', '500', '503'] },
    '/queues/status': { get: ['200', '401', '429', '500', '503'] },
    '/stats': { get: ['200', '401', '429', '500', '503'] },
    '/stats/history': { get: ['200', '400', '401', '429', '500', '503'] },
    '/health': { get: ['200'] },
    '/healthz': { get: ['200'] },
    '/readyz': { get: ['200', '503'] },
  };

  it('/openapi.json is an OpenAPI 3 document listing every route with a summary and its responses', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });

    expect(response.statusCode).toBe(200);
    const doc = response.json<{
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, Operation>>;
      components?: { schemas?: Record<string, unknown> };
    }>();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toEqual(expect.any(String));
    expect(doc.info.version).toEqual(expect.any(String));
    expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(expected).sort());

    for (const [path, methods] of Object.entries(expected)) {
      expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual(Object.keys(methods).sort());
      for (const [method, statuses] of Object.entries(methods)) {
        const operation = doc.paths[path]?.[method];
        expect(operation?.summary, `${method} ${path}`).toEqual(expect.any(String));
        expect(Object.keys(operation?.responses ?? {}).sort(), `${method} ${path}`).toEqual(statuses);
        for (const [status, described] of Object.entries(operation?.responses ?? {})) {
          expect(described.description, `${method} ${path} ${status}`).toEqual(expect.any(String));
          expect(described.content?.['application/json']?.schema, `${method} ${path} ${status}`).toBeDefined();
        }
      }
    }

    // The documented submission is core's schema; the id parameter is documented on id routes.
    const submit = doc.paths['/submit-job']?.['post'] as Operation & {
      requestBody: { content: Record<string, { schema: { properties: object } }> };
    };
    expect(Object.keys(submit.requestBody.content['application/json']?.schema.properties ?? {}).sort()).toEqual([
      'data',
      'estimated_runtime_sec',
      'latency_sensitive',
      'priority',
      'rows',
      'type',
    ]);
    expect(submit.requestBody.required).toBe(false);
    expect(doc.paths['/jobs/{id}']?.['get']?.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'id' })]);
    expect(doc.paths['/jobs']?.['get']?.parameters?.map((p) => p.name).sort()).toEqual([
      'cursor',
      'limit',
      'queue',
      'status',
    ]);

    // Every reference resolves, and nothing unused is listed.
    const text = JSON.stringify(doc);
    const refs = new Set([...text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]));
    expect(refs.size).toBeGreaterThan(0);
    expect(Object.keys(doc.components?.schemas ?? {}).sort()).toEqual([...refs].sort());
  });

  it('serves the docs UI at /docs', async () => {
    const { app } = await start();
    const response = await app.inject({ method: 'GET', url: '/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
  });
});
