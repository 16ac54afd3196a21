import { hostname } from 'node:os';
import type { JobStore, PoolQueue } from '@orch/core';
import type { Logger } from 'pino';

export interface PresenceOptions {
  store: JobStore;
  pool: PoolQueue;
  /** Distinguishes several consumers of one pool in one process (embedded replicas). @default pool */
  name?: string;
  concurrency: number;
  inFlight: () => number;
  /** @default 5000 */
  intervalInMs?: number;
  logger: Logger;
}

export interface Presence {
  readonly id: string;
  /** Stops reporting and removes the record, so dashboards stop counting this consumer at once. */
  stop(): Promise<void>;
}

let sequence = 0;

/**
 * Reports that this process consumes a pool, with its capacity and load, every `intervalInMs`,
 * through the job store (the one store every service shares), so dashboards can show each pool's
 * workers in every mode: embedded replicas, local processes, AKS pods. A failed report is logged
 * and retried at the next tick.
 */
export function startPresence(options: PresenceOptions): Presence {
  sequence += 1;
  const id = `${hostname()}:${process.pid}:${options.name ?? options.pool}:${sequence}`;
  const report = async (): Promise<void> => {
    try {
      await options.store.recordWorker({
        id,
        pool: options.pool,
        concurrency: options.concurrency,
        inFlight: options.inFlight(),
        seenAt: new Date().toISOString(),
      });
    } catch (e) {
      options.logger.warn({ err: e, presence: id }, 'could not report worker presence');
    }
  };
  let pending = report();
  const timer = setInterval(() => {
    pending = pending.then(report);
  }, options.intervalInMs ?? 5_000);
  timer.unref();
  return {
    id,
    async stop() {
      clearInterval(timer);
      await pending;
      try {
        await options.store.removeWorker(id);
      } catch (e) {
        options.logger.warn({ err: e, presence: id }, 'could not remove worker presence');
      }
    },
  };
}
