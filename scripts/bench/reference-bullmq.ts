/**
 * The reference: the same work on BullMQ with Redis (127.0.0.1:6379). Jobs run the same
 * `synthetic` handler on the same input; BullMQ persists each result as the job's return value in
 * Redis (our pipeline persists a result blob and the job record).
 */
import { randomUUID } from 'node:crypto';
import { runSynthetic } from '@orch/core';
import { Queue, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { ACTOR_JOB, percentile, sampleSpaced, seconds, sleep } from './lib.ts';

const connection = { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };

interface Payload {
  rows: number;
  estimatedRuntimeSec: number;
  /** Simulated duration factor, as our workers apply it. */
  factor: number;
}

async function withQueue<T>(
  concurrency: number,
  onStart: (job: Job<Payload>) => void,
  run: (queue: Queue<Payload>, completed: () => number) => Promise<T>,
): Promise<T> {
  const name = `orch-bench-${randomUUID()}`;
  const queue = new Queue<Payload>(name, { connection });
  let done = 0;
  const worker = new Worker<Payload>(
    name,
    async (job, _token, signal) => {
      onStart(job);
      const result = await runSynthetic(
        {
          jobId: job.id ?? '',
          rows: job.data.rows,
          estimatedRuntimeSec: job.data.estimatedRuntimeSec,
          data: {},
          attempt: job.attemptsMade + 1,
        },
        { signal: signal ?? new AbortController().signal, simulatedDurationFactor: job.data.factor },
      );
      return result;
    },
    { connection: { ...connection, maxRetriesPerRequest: null }, concurrency },
  );
  worker.on('completed', () => (done += 1));
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
  try {
    return await run(queue, () => done);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const payload = (factor = 0, estimatedRuntimeSec: number = ACTOR_JOB.estimated_runtime_sec): Payload => ({
  rows: ACTOR_JOB.rows,
  estimatedRuntimeSec,
  factor,
});

async function until(condition: () => boolean, timeoutInMs: number): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('BullMQ reference timed out');
    await sleep(10);
  }
}

/** Adds `count` jobs with addBulk and waits for all to complete: jobs/s from the first add. */
export function bullmqDrain(count: number, concurrency: number): Promise<number> {
  return withQueue(
    concurrency,
    () => undefined,
    async (queue, completed) => {
      const started = performance.now();
      for (let i = 0; i < count; i += 1000) {
        const n = Math.min(1000, count - i);
        await queue.addBulk(Array.from({ length: n }, () => ({ name: 'synthetic', data: payload() })));
      }
      await until(() => completed() >= count, 600_000);
      return count / seconds(started);
    },
  );
}

/** Adds jobs one by one at `rate` per second for `durationInMs`: add → start latency percentiles (ms). */
export function bullmqDispatchLatency(
  rate: number,
  durationInMs: number,
  concurrency: number,
): Promise<{ p50: number; p95: number; p99: number }> {
  const latencies: number[] = [];
  return withQueue(
    concurrency,
    (job) => latencies.push(Date.now() - job.timestamp),
    async (queue, completed) => {
      const total = Math.round((rate * durationInMs) / 1000);
      await offerAtRate(rate, total, () => queue.add('synthetic', payload()).then(() => undefined));
      await until(() => completed() >= total, 120_000);
      return { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) };
    },
  );
}

/**
 * A backlog of `backlog` low-priority jobs of `jobMs` each, then `probes` urgent jobs one at a time,
 * `gapInMs` apart: ms until each starts.
 */
export function bullmqPriority(
  backlog: number,
  jobMs: number,
  concurrency: number,
  probes: number,
  gapInMs: number,
): Promise<number[]> {
  const starts = new Map<string, number>();
  return withQueue(
    concurrency,
    (job) => {
      if (job.name === 'urgent' && job.id !== undefined) starts.set(job.id, Date.now() - job.timestamp);
    },
    async (queue) => {
      const slow = payload(jobMs / 1000 / 20, 20);
      for (let i = 0; i < backlog; i += 1000) {
        const n = Math.min(1000, backlog - i);
        await queue.addBulk(Array.from({ length: n }, () => ({ name: 'low', data: slow, opts: { priority: 100 } })));
      }
      return sampleSpaced(probes, gapInMs, async () => {
        const jobId = randomUUID();
        await queue.add('urgent', payload(), { priority: 1, jobId });
        await until(() => starts.has(jobId), 120_000);
        return starts.get(jobId) ?? NaN;
      });
    },
  );
}

/**
 * Calls `send` `total` times at `rate` per second (open loop: a slow send does not slow the offer
 * down, up to `maxInFlight` calls at once, beyond which the offer waits), and waits for every call.
 * Returns the rate actually offered, per second.
 */
export async function offerAtRate(
  rate: number,
  total: number,
  send: () => Promise<void>,
  maxInFlight = 256,
): Promise<number> {
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  for (let sent = 0; sent < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    while (sent < due && pending.size < maxInFlight) {
      const call = send().finally(() => pending.delete(call));
      pending.add(call);
      sent += 1;
    }
    await (pending.size >= maxInFlight ? Promise.race(pending) : sleep(5));
  }
  await Promise.all(pending);
  return total / ((performance.now() - started) / 1000);
}
