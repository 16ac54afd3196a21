import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startOpsServer } from '@orch/platform/runtime';
import type { OpsServer } from '@orch/platform/runtime';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { parsePrometheusText, sampleValue } from '@orch/platform/testing';

const logger = pino({ level: 'silent' });

describe('ops server', () => {
  let server: OpsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('given passing checks, when probed, then /healthz and /readyz answer 200', async () => {
    server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger,
      readinessChecks: { store: () => Promise.resolve() },
    });

    const health = await fetch(`${server.url}/healthz`);
    const ready = await fetch(`${server.url}/readyz`);

    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { store: 'ok' } });
  });

  it('given a failing check, when /readyz is probed, then it answers 503 naming the check', async () => {
    server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      logger,
      readinessChecks: { store: () => Promise.reject(new Error('connection refused')), other: () => Promise.resolve() },
    });

    const ready = await fetch(`${server.url}/readyz`);

    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', checks: { store: 'failed', other: 'ok' } });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('given shutdown has begun, when /readyz is probed, then it answers 503 while /healthz stays 200', async () => {
    server = await startOpsServer({ port: 0, host: '127.0.0.1', logger });

    server.setReady(false);

    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('given an unknown path, when requested, then it answers a 404 JSON error', async () => {
    server = await startOpsServer({ port: 0, host: '127.0.0.1', logger });

    const response = await fetch(`${server.url}/nope`);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'no route /nope' } });
  });
});

describe('ops server metrics', () => {
  it('given metrics, when /metrics is scraped, then it serves the Prometheus exposition', async () => {
    const metrics = createPrometheusMetrics({ service: 'worker-test', defaultMetrics: false });
    metrics.jobFinished('actor-jobs', 'high', 'succeeded', 1500);
    const server = await startOpsServer({ port: 0, host: '127.0.0.1', logger, metrics });
    try {
      const response = await fetch(`${server.url}/metrics`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const samples = parsePrometheusText(await response.text());
      const labels = { service: 'worker-test', queue: 'actor-jobs' };
      expect(sampleValue(samples, 'orch_jobs_completed_total', { ...labels, priority: 'high' })).toBe(1);
      expect(sampleValue(samples, 'orch_job_duration_seconds_sum', { ...labels, outcome: 'succeeded' })).toBe(1.5);
      expect(sampleValue(samples, 'orch_job_duration_seconds_bucket', { ...labels, le: '2.5' })).toBe(1);
      expect(sampleValue(samples, 'orch_job_duration_seconds_bucket', { ...labels, le: '1' })).toBe(0);
    } finally {
      await server.close();
    }
  });
});
