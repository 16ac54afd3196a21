import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POOL_QUEUES } from '@orch/core';
import {
  eventually,
  ONE_JOB_PER_ROUTE,
  parsePrometheusText,
  removeDir,
  startSystem,
  submitAll,
  sumSamples,
  waitTerminal,
  type PrometheusSample,
  type RunningSystem,
} from '@orch/platform/testing';

/**
 * `GET /metrics` of the embedded system, run as a process, while real jobs flow through every pool:
 * what an operator's Prometheus scrapes. Submissions are counted by the pool the classifier will
 * pick; the scheduler, the workers and the batch submitter count routing, completions, failures,
 * retries and durations in the same registry.
 */
const EMBEDDED = path.resolve(import.meta.dirname, '../../../embedded/src/main.ts');

let system: RunningSystem;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'orch-metrics-'));
  system = await startSystem(EMBEDDED, {
    DATA_DIR: dataDir,
    SIMULATED_DURATION_FACTOR: '0.01',
    BATCH_LINGER_MS: '50',
    BATCH_POLL_INTERVAL_MS: '200',
    JOB_MAX_ATTEMPTS: '2',
    RETRY_BASE_DELAY_MS: '50',
  });
});

afterAll(async () => {
  await system?.killAll();
  if (dataDir) await removeDir(dataDir);
});

async function scrape(): Promise<PrometheusSample[]> {
  const response = await fetch(`${system.url}/metrics`);
  expect(response.status).toBe(200);
  return parsePrometheusText(await response.text());
}

describe('GET /metrics of a running system', () => {
  it('after jobs finish, shows them submitted, routed, completed and failed by queue and priority, with durations', async () => {
    const before = await scrape();
    const succeeding = POOL_QUEUES.map((queue) => ({ ...ONE_JOB_PER_ROUTE[queue], priority: 'low' }));
    // Fails both of its attempts: one retry, then failed for good.
    const failing = { ...ONE_JOB_PER_ROUTE['actor-jobs'], priority: 'urgent', data: { fail_first_attempts: 5 } };
    const ids = await submitAll(system.url, [...succeeding, failing]);
    const views = await waitTerminal(system.url, ids, 90_000);
    expect(views.map((v) => [v.queue, v.status])).toEqual([
      ...POOL_QUEUES.map((queue) => [queue, 'succeeded']),
      ['actor-jobs', 'failed'],
    ]);

    const moved = (after: PrometheusSample[], name: string, labels: Record<string, string>): number =>
      sumSamples(after, name, labels) - sumSamples(before, name, labels);

    // The batch submitter counts a batch job when it reads its task's outcome: poll until it has.
    const after = await eventually(
      async () => {
        const samples = await scrape();
        const counted = POOL_QUEUES.every(
          (queue) => moved(samples, 'orch_jobs_completed_total', { queue, priority: 'low' }) === 1,
        );
        return counted ? samples : undefined;
      },
      30_000,
      'every pool to count its completed job',
    );

    for (const queue of POOL_QUEUES) {
      expect(moved(after, 'orch_jobs_submitted_total', { queue, priority: 'low' }), queue).toBe(1);
      expect(moved(after, 'orch_jobs_routed_total', { queue, priority: 'low' }), queue).toBe(1);
      expect(moved(after, 'orch_jobs_completed_total', { queue, priority: 'low' }), queue).toBe(1);
      expect(moved(after, 'orch_job_duration_seconds_count', { queue, outcome: 'succeeded' }), queue).toBe(1);
      expect(moved(after, 'orch_job_duration_seconds_bucket', { queue, outcome: 'succeeded', le: '+Inf' }), queue).toBe(
        1,
      );
      expect(moved(after, 'orch_dispatch_latency_seconds_count', { queue, priority: 'low' }), queue).toBe(1);
    }
    const urgentActor = { queue: 'actor-jobs', priority: 'urgent' };
    expect(moved(after, 'orch_jobs_submitted_total', urgentActor)).toBe(1);
    expect(moved(after, 'orch_job_retries_total', urgentActor)).toBe(1);
    expect(moved(after, 'orch_jobs_failed_total', urgentActor)).toBe(1);
    expect(moved(after, 'orch_jobs_completed_total', urgentActor)).toBe(0);
    expect(moved(after, 'orch_job_duration_seconds_count', { queue: 'actor-jobs', outcome: 'failed' })).toBe(1);
    // Every series of the embedded process carries its service label.
    expect(after.filter((s) => s.name.startsWith('orch_')).every((s) => s.labels.service === 'embedded')).toBe(true);
  });
});
