import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHYSICAL_QUEUES } from '@orch/core';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { parsePrometheusText, sampleValue, sumSamples } from '@orch/platform/testing';
import { createBackends, createTestApp } from './support.ts';
import type { Backends, TestApp } from './support.ts';

describe('GET /metrics', () => {
  let backends: Backends;
  let test: TestApp;

  beforeAll(async () => {
    backends = await createBackends();
    test = await createTestApp(backends, {
      metrics: createPrometheusMetrics({ service: 'api', defaultMetrics: true }),
    });
  });
  afterAll(async () => {
    await test.close();
    await backends.close();
  });

  const scrape = async () => {
    const response = await test.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    return parsePrometheusText(response.body);
  };

  it('given jobs are submitted, when scraped, then the submission counters move by priority', async () => {
    const before = await scrape();
    const submittedBefore = (priority: string) =>
      sumSamples(before, 'orch_jobs_submitted_total', { service: 'api', priority });

    await test.app.inject({ method: 'POST', url: '/jobs', payload: { priority: 'urgent' } });
    await test.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      payload: { jobs: [{ priority: 'low' }, { priority: 'low' }, { priority: 'urgent' }] },
    });

    const after = await scrape();
    expect(sampleValue(after, 'orch_jobs_submitted_total', { priority: 'urgent' }) - submittedBefore('urgent')).toBe(2);
    expect(sampleValue(after, 'orch_jobs_submitted_total', { priority: 'low' }) - submittedBefore('low')).toBe(2);
  });

  it('given requests were answered, when scraped, then they are counted by route pattern and status, not raw URL', async () => {
    await test.app.inject({ method: 'GET', url: '/jobs/does-not-exist' });
    await test.app.inject({ method: 'GET', url: '/jobs/also-missing' });

    const samples = await scrape();

    expect(sampleValue(samples, 'orch_http_requests_total', { method: 'GET', route: '/jobs/:id', status: '404' })).toBe(
      2,
    );
    expect(samples.some((s) => s.labels.route?.includes('does-not-exist'))).toBe(false);
    expect(
      sampleValue(samples, 'orch_http_request_duration_seconds_count', { method: 'GET', route: '/jobs/:id' }),
    ).toBeGreaterThanOrEqual(2);
  });

  it('given queued messages, when scraped, then the depth of every physical queue is exported by kind', async () => {
    await test.app.inject({ method: 'POST', url: '/jobs', payload: {} });

    const samples = await scrape();

    for (const queue of PHYSICAL_QUEUES) {
      for (const kind of ['active', 'scheduled', 'dead_letter']) {
        expect(sampleValue(samples, 'orch_queue_depth', { queue, kind })).toBeGreaterThanOrEqual(0);
      }
    }
    expect(sampleValue(samples, 'orch_queue_depth', { queue: 'jobqueue', kind: 'active' })).toBeGreaterThan(0);
    expect(sumSamples(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('given no metrics were wired, then /metrics is a 404', async () => {
    const bare = await createTestApp(backends);
    try {
      const response = await bare.app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });
});
