import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CLASSIFIER_OPTIONS, PHYSICAL_QUEUES } from '@orch/core';
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

  it('given jobs are submitted, when scraped, then the submission counters move by the queue the classifier will pick and priority', async () => {
    const before = await scrape();
    const submittedBefore = (queue: string, priority: string) =>
      sumSamples(before, 'orch_jobs_submitted_total', { service: 'api', queue, priority });

    await test.app.inject({ method: 'POST', url: '/jobs', payload: { priority: 'urgent', latency_sensitive: true } });
    await test.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      // cost 1.001 → batch-jobs; cost 5.0 → ml-jobs; cost 10.5 → spark-jobs; ×1.5 for urgent: 7.5 → ml-jobs.
      payload: {
        jobs: [
          { priority: 'low', rows: 1_000, estimated_runtime_sec: 10 },
          { priority: 'low', rows: 0, estimated_runtime_sec: 50 },
          { priority: 'low', rows: 500_000, estimated_runtime_sec: 100 },
          { priority: 'urgent', rows: 0, estimated_runtime_sec: 50 },
          { priority: 'low', rows: 2_000, estimated_runtime_sec: 5 },
        ],
      },
    });

    const after = await scrape();
    const moved = (queue: string, priority: string) =>
      sampleValue(after, 'orch_jobs_submitted_total', { queue, priority }) - submittedBefore(queue, priority);
    expect(moved('actor-jobs', 'urgent')).toBe(1);
    expect(moved('batch-jobs', 'low')).toBe(2);
    expect(moved('ml-jobs', 'low')).toBe(1);
    expect(moved('spark-jobs', 'low')).toBe(1);
    expect(moved('ml-jobs', 'urgent')).toBe(1);
  });

  it('given the classifier is configured, then submissions are labelled with the pool it will pick', async () => {
    const tuned = await createTestApp(
      backends,
      { metrics: createPrometheusMetrics({ service: 'api', defaultMetrics: false }) },
      { classifier: { ...DEFAULT_CLASSIFIER_OPTIONS, mlThreshold: 0.5 } },
    );
    try {
      await tuned.app.inject({ method: 'POST', url: '/jobs', payload: { rows: 1_000, estimated_runtime_sec: 10 } });
      const samples = parsePrometheusText((await tuned.app.inject({ method: 'GET', url: '/metrics' })).body);
      // cost 1.001 is over the lowered ml threshold: ml-jobs, where the default would say batch-jobs.
      expect(sampleValue(samples, 'orch_jobs_submitted_total', { queue: 'ml-jobs', priority: 'normal' })).toBe(1);
      expect(sumSamples(samples, 'orch_jobs_submitted_total', { queue: 'batch-jobs' })).toBe(0);
    } finally {
      await tuned.close();
    }
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
