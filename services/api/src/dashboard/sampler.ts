import { INGEST_LANES, INGEST_QUEUE, POOL_QUEUES, lanesOf, sumQueueDepths } from '@orch/core';
import type { JobActivity, JobStore, QueueTransport } from '@orch/core';
import type { Logger } from '@orch/platform/runtime';

/** What the jobs did over the last `rateWindowInMs`. */
export interface JobFigures {
  /** Jobs that finished per second. */
  succeededPerSec: number;
  failedPerSec: number;
  /** Submit → start of the jobs that started; null when none did. */
  dispatchLatencyInMs: { p50: number; p95: number } | null;
}

/** One point of the dashboard's history: what an operator watches, at one moment. */
export interface Sample extends JobFigures {
  /** Epoch milliseconds. */
  at: number;
  /** Each logical queue (the ingest queue and the four pools), its lanes summed. */
  queues: Record<string, { active: number; scheduled: number; deadLetter: number }>;
  /** Per pool: worker processes or replicas, their slots, and the jobs they are running. */
  workers: Record<string, { replicas: number; concurrency: number; inFlight: number }>;
}

/** A sample as one tenant sees it: its own jobs' figures, each null where none were computed. */
export type TenantSample = Omit<Sample, keyof JobFigures> & { [K in keyof JobFigures]: JobFigures[K] | null };

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
  /**
   * `history(since)` as `tenant` sees it: the same queue depths and workers (shared infrastructure)
   * with the figures of the tenant's own jobs. Those are computed on request, for the newest sample
   * only (one store query, shared by the tenant's requests until the next sample), and kept as long
   * as the sample is; the other samples have the figures computed for them before, or nulls. A
   * failed query is logged and leaves nulls, to be tried again by the next request.
   */
  tenantHistory(tenant: string, since?: number): Promise<TenantSample[]>;
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
 * Tenants' figures are kept per tenant for the samples still in the ring: at most one entry per
 * sample for each tenant with an API key.
 */
export function createStatsSampler(options: StatsSamplerOptions): StatsSampler {
  const { store, transport, logger } = options;
  const intervalInMs = options.intervalInMs ?? 1000;
  const capacity = Math.max(1, Math.ceil((options.historyInMs ?? 900_000) / intervalInMs));
  const rateWindowInMs = options.rateWindowInMs ?? 5000;
  const workerStaleInMs = options.workerStaleInMs ?? 15_000;
  const now = options.now ?? Date.now;
  const samples: Sample[] = [];
  /** Per tenant, by sample time: its figures, computed (or being computed) when it asked. */
  const tenantFigures = new Map<string, Map<number, Promise<JobFigures | null>>>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  async function sample(): Promise<Sample> {
    const at = now();
    const [depths, activity, workers] = await Promise.all([
      Promise.all(
        LOGICAL_QUEUES.map(async ({ name, lanes }) => {
          const byLane = await Promise.all(lanes.map((lane) => transport.getQueueDepth(lane)));
          return [name, sumQueueDepths(byLane)] as const;
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
    const taken: Sample = { at, queues: Object.fromEntries(depths), workers: byPool, ...toFigures(activity) };
    samples.push(taken);
    if (samples.length > capacity) samples.splice(0, samples.length - capacity);
    forgetFiguresBefore(samples[0]?.at ?? at);
    return taken;
  }

  function toFigures(activity: JobActivity): JobFigures {
    const perSec = (n: number): number => Math.round((n / rateWindowInMs) * 1000 * 100) / 100;
    const latency = activity.dispatchLatencyInMs;
    return {
      succeededPerSec: perSec(activity.succeeded),
      failedPerSec: perSec(activity.failed),
      dispatchLatencyInMs: latency && { p50: latency.p50, p95: latency.p95 },
    };
  }

  /** Drops tenants' figures of samples that left the ring (entries are in time order). */
  function forgetFiguresBefore(oldest: number): void {
    for (const [tenant, byAt] of tenantFigures) {
      for (const at of byAt.keys()) {
        if (at >= oldest) break;
        byAt.delete(at);
      }
      if (byAt.size === 0) tenantFigures.delete(tenant);
    }
  }

  function figuresOf(tenant: string, newest: Sample): Map<number, Promise<JobFigures | null>> {
    const byAt = tenantFigures.get(tenant) ?? new Map<number, Promise<JobFigures | null>>();
    tenantFigures.set(tenant, byAt);
    if (!byAt.has(newest.at)) {
      const figures = store.getActivity(new Date(now() - rateWindowInMs), { tenant }).then(toFigures, (e: unknown) => {
        logger.warn({ err: e, tenant }, 'dashboard figures of a tenant failed');
        byAt.delete(newest.at);
        return null;
      });
      byAt.set(newest.at, figures);
    }
    return byAt;
  }

  const history = (since?: number): Sample[] =>
    since === undefined ? [...samples] : samples.filter((s) => s.at > since);

  return {
    intervalInMs,
    sample,
    history,
    async tenantHistory(tenant, since) {
      const taken = history(since);
      const newest = taken.at(-1);
      if (!newest) return [];
      const byAt = figuresOf(tenant, newest);
      return Promise.all(
        taken.map(async ({ at, queues, workers }) => {
          const figures = (await byAt.get(at)) ?? null;
          return {
            at,
            queues,
            workers,
            succeededPerSec: figures?.succeededPerSec ?? null,
            failedPerSec: figures?.failedPerSec ?? null,
            dispatchLatencyInMs: figures?.dispatchLatencyInMs ?? null,
          };
        }),
      );
    },
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
