import { createMemoryTransport } from '@orch/platform/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStatsSampler } from '../../src/dashboard/sampler.ts';
import { createBackends, createTestApp, silentLogger } from './support.ts';
import type { Backends } from './support.ts';

let backends: Backends;
beforeAll(async () => {
  backends = await createBackends();
});
afterAll(async () => {
  await backends?.close();
});

const activity = (succeeded: number, failed: number) => ({
  getActivity: () =>
    Promise.resolve({ succeeded, failed, started: 4, dispatchLatencyInMs: { p50: 12, p95: 80, p99: 90 } }),
});

describe('dashboard sampler', () => {
  it('keeps a bounded history: historyInMs / intervalInMs samples, oldest dropped first', async () => {
    let now = 1_000_000;
    const sampler = createStatsSampler({
      store: { ...activity(0, 0), listWorkers: () => Promise.resolve([]) },
      transport: createMemoryTransport(),
      logger: silentLogger,
      intervalInMs: 1000,
      historyInMs: 5000,
      now: () => (now += 1000),
    });
    for (let i = 0; i < 12; i++) await sampler.sample();
    const history = sampler.history();
    expect(history).toHaveLength(5);
    expect(history.map((s) => s.at)).toEqual([1_008_000, 1_009_000, 1_010_000, 1_011_000, 1_012_000]);
    expect(sampler.history(1_010_000).map((s) => s.at)).toEqual([1_011_000, 1_012_000]);
  });

  it('reports depths per logical queue (lanes summed), workers per pool, and rates over the window', async () => {
    const transport = createMemoryTransport();
    await transport.send('batch-jobs', { body: { jobId: 'a' } });
    await transport.send('batch-jobs-high', { body: { jobId: 'b' } });
    await transport.send('jobqueue', { body: { jobId: 'c' } });
    const sampler = createStatsSampler({
      store: {
        ...activity(10, 5),
        listWorkers: () =>
          Promise.resolve([
            { id: 'w1', pool: 'actor-jobs', concurrency: 8, inFlight: 3, seenAt: new Date().toISOString() },
            { id: 'w2', pool: 'actor-jobs', concurrency: 8, inFlight: 1, seenAt: new Date().toISOString() },
          ]),
      },
      transport,
      logger: silentLogger,
      rateWindowInMs: 5000,
    });
    const sample = await sampler.sample();
    expect(sample.queues['batch-jobs']).toEqual({ active: 2, scheduled: 0, deadLetter: 0 });
    expect(sample.queues.jobqueue?.active).toBe(1);
    expect(Object.keys(sample.queues)).toEqual(['jobqueue', 'actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs']);
    expect(sample.workers['actor-jobs']).toEqual({ replicas: 2, concurrency: 16, inFlight: 4 });
    expect(sample.workers['spark-jobs']).toEqual({ replicas: 0, concurrency: 0, inFlight: 0 });
    expect(sample.succeededPerSec).toBe(2);
    expect(sample.failedPerSec).toBe(1);
    expect(sample.dispatchLatencyInMs).toEqual({ p50: 12, p95: 80 });
    await transport.close();
  });

  it('gives a tenant its own figures, computed on request for the newest sample and kept while it is', async () => {
    let now = 1_000_000;
    const asked: { since: number; tenant: string | undefined }[] = [];
    let failNext = false;
    const sampler = createStatsSampler({
      store: {
        getActivity: (since, options) => {
          asked.push({ since: since.getTime(), tenant: options?.tenant });
          if (failNext) {
            failNext = false;
            return Promise.reject(new Error('store down'));
          }
          const succeeded = options?.tenant === 'acme' ? 5 : options?.tenant === 'globex' ? 10 : 50;
          return Promise.resolve({ succeeded, failed: 0, started: 0, dispatchLatencyInMs: null });
        },
        listWorkers: () => Promise.resolve([]),
      },
      transport: createMemoryTransport(),
      logger: silentLogger,
      intervalInMs: 1000,
      historyInMs: 3000,
      rateWindowInMs: 5000,
      now: () => now,
    });
    const rates = (samples: { succeededPerSec: number | null }[]) => samples.map((s) => s.succeededPerSec);
    for (let i = 0; i < 2; i++) {
      now += 1000;
      await sampler.sample();
    }
    asked.length = 0;

    // Only the newest sample gets figures; the older one was taken before acme asked.
    now += 300;
    expect(rates(await sampler.tenantHistory('acme'))).toEqual([null, 1]);
    expect(asked).toEqual([{ since: now - 5000, tenant: 'acme' }]);
    // Asked again before the next sample: the same figures, no new query.
    expect(rates(await sampler.tenantHistory('acme'))).toEqual([null, 1]);
    expect(asked).toHaveLength(1);
    // Each tenant its own; the admin's history is every tenant's, as sampled.
    expect(rates(await sampler.tenantHistory('globex'))).toEqual([null, 2]);
    expect(rates(sampler.history())).toEqual([10, 10]);

    // A new sample: acme's earlier figures are kept, the new one computed; `since` works as for history.
    now += 700;
    await sampler.sample();
    const newest = sampler.history().at(-1)!.at;
    expect(rates(await sampler.tenantHistory('acme'))).toEqual([null, 1, 1]);
    expect((await sampler.tenantHistory('acme', newest - 1)).map((s) => s.at)).toEqual([newest]);
    expect(await sampler.tenantHistory('acme', newest)).toEqual([]);
    // Depths and workers are the shared ones.
    const { queues, workers } = sampler.history().at(-1)!;
    expect((await sampler.tenantHistory('acme')).at(-1)).toMatchObject({ queues, workers });

    // A failed query leaves nulls and is tried again by the next request.
    now += 1000;
    await sampler.sample();
    failNext = true;
    expect(rates(await sampler.tenantHistory('acme'))).toEqual([1, 1, null]);
    expect(rates(await sampler.tenantHistory('acme'))).toEqual([1, 1, 1]);
  });

  it('serves the page and its files without a key, and the history only with one', async () => {
    const { generateApiKey, parseApiKeys } = await import('../../src/index.ts');
    const key = generateApiKey('acme');
    const test = await createTestApp(backends, {}, { apiKeys: parseApiKeys(key.entry, 'test') });
    try {
      for (const url of [
        '/',
        '/dashboard/app.js',
        '/dashboard/app.css',
        '/dashboard/uplot.js',
        '/dashboard/uplot.css',
      ]) {
        const response = await test.app.inject({ method: 'GET', url });
        expect(response.statusCode, url).toBe(200);
      }
      const page = await test.app.inject({ method: 'GET', url: '/' });
      expect(page.headers['content-type']).toContain('text/html');
      expect(page.body).not.toMatch(/<script>(?!<)/); // no inline script: the CSP allows files only
      expect((await test.app.inject({ method: 'GET', url: '/stats/history' })).statusCode).toBe(401);
      const history = await test.app.inject({
        method: 'GET',
        url: '/stats/history',
        headers: { authorization: `Bearer ${key.key}` },
      });
      expect(history.statusCode).toBe(200);
      const body = history.json<{ interval_ms: number; samples: { queues: Record<string, unknown> }[] }>();
      expect(body.interval_ms).toBe(1000);
      expect(body.samples.length).toBeGreaterThanOrEqual(1); // the first sample is taken when the app is ready
      expect(Object.keys(body.samples[0]!.queues)).toContain('ml-jobs');
    } finally {
      await test.close();
    }
  });
});
