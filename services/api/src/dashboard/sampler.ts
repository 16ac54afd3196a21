import { INGEST_LANES, INGEST_QUEUE, POOL_QUEUES, lanesOf } from '@orch/core';
import type { JobStore, QueueTransport } from '@orch/core';
import type { Logger } from '@orch/platform/runtime';

/** One point of the dashboard's history: what an operator watches, at one moment. */
export interface Sample {
  /** Epoch milliseconds. */
  at: number;
  /** Each logical queue (the ingest queue and the four pools), its lanes summed. */
  queues: Record<string, { active: number; scheduled: number; deadLetter: number }>;
  /** Per pool: worker processes or replicas, their slots, and the jobs they are running. */
  workers: Record<string, { replicas: number; concurrency: number; inFlight: number }>;
  /** Jobs that finished per second over the last `rateWindowInMs`. */
  succeededPerSec: number;
  failedPerSec: number;
  /** Submit → start of the jobs that started over the last `rateWindowInMs`; null when none did. */
  dispatchLatencyInMs: { p50: number; p95: number } | null;
}

export interface StatsSamplerOptions {
  store: Pick<JobStore, 'getActivity' | 'listWorkers'>;
  transport: Pick<QueueTransport, 'getQueueDepth'>;
  logger: Logger;
  /** @default 1000 */
  intervalInMs?: number;
  /** How much history is kept. @default 900000 (15 minutes) */
  historyInMs?: number;
  /** The window rates and latencies are computed over. @default 5000 */
  rateWindowInMs?: number;
  /** Workers not seen for this long are gone. @default 15000 */
  workerStaleInMs?: number;
  /** @default Date.now */
  now?: () => number;
}

export interface StatsSampler {
  /** Takes one sample now (and keeps it). */
  sample(): Promise<Sample>;
  /** Samples taken after `since` (epoch ms), oldest first; all of them without `since`. */
  history(since?: number): Sample[];
  /** Samples every `intervalInMs` until `stop`; a failed sample is logged and skipped. */
  start(): void;
  stop(): void;
  readonly intervalInMs: number;
}

const LOGICAL_QUEUES = [
  { name: INGEST_QUEUE, lanes: INGEST_LANES.map((l) => l.queue) },
  ...POOL_QUEUES.map((pool) => ({ name: pool, lanes: lanesOf(pool).map((l) => l.queue) })),
];

/**
 * The bounded history behind the dashboard: one sample per interval in a ring of
 * `historyInMs / intervalInMs` entries, so the page shows what happened before it was opened and the
 * API's memory stays flat. Sampling reads only aggregates (depths, two grouped counts, presence).
 */
export function createStatsSampler(options: StatsSamplerOptions): StatsSampler {
  const { store, transport, logger } = options;
  const intervalInMs = options.intervalInMs ?? 1000;
  const capacity = Math.max(1, Math.ceil((options.historyInMs ?? 900_000) / intervalInMs));
  const rateWindowInMs = options.rateWindowInMs ?? 5000;
  const workerStaleInMs = options.workerStaleInMs ?? 15_000;
  const now = options.now ?? Date.now;
  const samples: Sample[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  async function sample(): Promise<Sample> {
    const at = now();
    const [depths, activity, workers] = await Promise.all([
      Promise.all(
        LOGICAL_QUEUES.map(async ({ name, lanes }) => {
          const byLane = await Promise.all(lanes.map((lane) => transport.getQueueDepth(lane)));
          return [
            name,
            byLane.reduce(
              (sum, d) => ({
                active: sum.active + d.active,
                scheduled: sum.scheduled + d.scheduled,
                deadLetter: sum.deadLetter + d.deadLetter,
              }),
              { active: 0, scheduled: 0, deadLetter: 0 },
            ),
          ] as const;
        }),
      ),
      store.getActivity(new Date(at - rateWindowInMs)),
      store.listWorkers(new Date(at - workerStaleInMs)),
    ]);
    const byPool: Sample['workers'] = Object.fromEntries(
      POOL_QUEUES.map((pool) => [pool, { replicas: 0, concurrency: 0, inFlight: 0 }]),
    );
    for (const worker of workers) {
      const pool = byPool[worker.pool];
      if (!pool) continue;
      pool.replicas += 1;
      pool.concurrency += worker.concurrency;
      pool.inFlight += worker.inFlight;
    }
    const perSec = (n: number): number => Math.round((n / rateWindowInMs) * 1000 * 100) / 100;
    const latency = activity.dispatchLatencyInMs;
    const taken: Sample = {
      at,
      queues: Object.fromEntries(depths),
      workers: byPool,
      succeededPerSec: perSec(activity.succeeded),
      failedPerSec: perSec(activity.failed),
      dispatchLatencyInMs: latency && { p50: latency.p50, p95: latency.p95 },
    };
    samples.push(taken);
    if (samples.length > capacity) samples.splice(0, samples.length - capacity);
    return taken;
  }

  return {
    intervalInMs,
    sample,
    history: (since) => (since === undefined ? [...samples] : samples.filter((s) => s.at > since)),
    start() {
      if (timer) return;
      timer = setInterval(() => {
        // One sample at a time: a slow store skips ticks rather than piling them up.
        if (running) return;
        running = sample()
          .catch((e: unknown) => logger.warn({ err: e }, 'dashboard sample failed'))
          .finally(() => (running = undefined));
      }, intervalInMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
