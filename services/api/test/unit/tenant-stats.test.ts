import { randomUUID } from 'node:crypto';
import { JOB_STATES } from '@orch/core';
import type { JobState } from '@orch/core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, parseApiKeys } from '../../src/index.ts';
import { advanceJob, createBackends, createTestApp } from './support.ts';
import type { Backends, TestApp } from './support.ts';

let backends: Backends;
beforeAll(async () => {
  backends = await createBackends();
});
afterAll(async () => {
  await backends?.close();
});

const ops = generateApiKey('ops', true);
const as = (key: string) => ({ authorization: `Bearer ${key}` });
const NONE = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;

/**
 * An app with an admin key and three tenant keys of tenants of their own, so jobs of other tests in
 * the shared store stay out of their figures.
 */
async function withApp(
  sampleIntervalInMs: number,
  body: (app: FastifyInstance, tenants: Record<'acme' | 'globex' | 'idle', string>) => Promise<void>,
): Promise<void> {
  const keyOf = (name: string) => generateApiKey(`${name}-${randomUUID()}`);
  const [acme, globex, idle] = [keyOf('acme'), keyOf('globex'), keyOf('idle')];
  const entries = [acme, globex, idle, ops].map((k) => k.entry).join('\n');
  const test: TestApp = await createTestApp(
    backends,
    {},
    { apiKeys: parseApiKeys(entries, 'test'), dashboard: { sampleIntervalInMs } },
  );
  try {
    await body(test.app, { acme: acme.key, globex: globex.key, idle: idle.key });
  } finally {
    await test.close();
  }
}

/** Submits one job per path as the key's tenant and moves each along its path. */
async function runJobs(app: FastifyInstance, key: string, paths: readonly (readonly JobState[])[]): Promise<void> {
  for (const path of paths) {
    const response = await app.inject({
      method: 'POST',
      url: '/jobs',
      payload: '{"rows": 3}',
      headers: { 'content-type': 'application/json', ...as(key) },
    });
    expect(response.statusCode).toBe(202);
    await advanceJob(backends.store, response.json<{ job_id: string }>().job_id, path);
  }
}

const SUCCEED = ['queued', 'running', 'succeeded'] as const;
const FAIL = ['queued', 'running', 'failed'] as const;

describe('dashboard figures per tenant', () => {
  it('given two tenants, then /stats counts a tenant key’s own jobs and every job for an admin key', async () => {
    await withApp(60_000, async (app, { acme, globex, idle }) => {
      await runJobs(app, acme, [[], SUCCEED, ['queued', 'running']]);
      await runJobs(app, globex, [FAIL, FAIL]);

      const statsOf = async (key: string) => {
        const response = await app.inject({ method: 'GET', url: '/stats', headers: as(key) });
        expect(response.statusCode).toBe(200);
        return response.json<{ jobs: Record<JobState, number> }>().jobs;
      };
      expect(await statsOf(acme)).toStrictEqual({ ...NONE, submitted: 1, running: 1, succeeded: 1 });
      expect(await statsOf(globex)).toStrictEqual({ ...NONE, failed: 2 });
      expect(await statsOf(idle)).toStrictEqual(NONE);
      expect(await statsOf(ops.key)).toStrictEqual(await backends.store.countByState());

      const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
        paths: Record<string, { get?: { description?: string; responses?: Record<string, unknown> } }>;
      }>();
      expect(openapi.paths['/stats']?.get?.description).toContain('only its own for a tenant key');
      expect(openapi.paths['/stats']?.get?.responses).not.toHaveProperty('403');
    });
  });

  it('given two tenants, then /stats/history gives a tenant key its own rates and latency, and an admin key everyone’s', async () => {
    await withApp(50, async (app, { acme, globex, idle }) => {
      type Sample = {
        at: number;
        succeeded_per_sec: number | null;
        failed_per_sec: number | null;
        dispatch_latency_ms: { p50: number; p95: number } | null;
      };
      const historyOf = async (key: string) => {
        const response = await app.inject({ method: 'GET', url: '/stats/history', headers: as(key) });
        expect(response.statusCode).toBe(200);
        return response.json<{ samples: Sample[] }>().samples;
      };
      // Jobs finished within the last 5 s (the rate window), by sample time.
      await runJobs(app, acme, [SUCCEED, SUCCEED, FAIL]);
      await runJobs(app, globex, [SUCCEED]);

      const acmeSamples = await historyOf(acme);
      const newest = acmeSamples.at(-1);
      expect(newest).toMatchObject({ succeeded_per_sec: 0.4, failed_per_sec: 0.2 });
      expect(newest?.dispatch_latency_ms?.p95).toBeGreaterThanOrEqual(0);
      // Samples taken before acme first asked have no figures for it.
      expect(acmeSamples.slice(0, -1).every((s) => s.succeeded_per_sec === null)).toBe(true);
      expect((await historyOf(globex)).at(-1)).toMatchObject({ succeeded_per_sec: 0.2, failed_per_sec: 0 });
      expect((await historyOf(idle)).at(-1)).toMatchObject({
        succeeded_per_sec: 0,
        failed_per_sec: 0,
        dispatch_latency_ms: null,
      });

      // The admin's samples count every tenant's jobs; one taken after the jobs finished has all four.
      await expect
        .poll(async () => (await historyOf(ops.key)).at(-1)?.succeeded_per_sec ?? 0, { timeout: 3000 })
        .toBeGreaterThanOrEqual(0.6);
      // Acme's figures stay on the samples they were computed for.
      const again = await historyOf(acme);
      expect(again.find((s) => s.at === newest?.at)).toStrictEqual(newest);
    });
  });
});
