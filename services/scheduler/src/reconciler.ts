import { decideAfterFailure, dispatchJobs, OrchestratorError } from '@orch/core';
import type { Job, JobStore, QueueTransport, RetryPolicy } from '@orch/core';
import type { Logger } from '@orch/platform/runtime';

export interface ReconcilerDeps {
  store: JobStore;
  transport: QueueTransport;
  logger: Logger;
  clock?: () => Date;
}

export interface ReconcilerOptions {
  retryPolicy: RetryPolicy;
  /** @default 10000 */
  intervalInMs?: number;
  /** A job whose message was never confirmed sent is dispatched again after this long. @default 30000 */
  dispatchGraceInMs?: number;
  /** A running job silent for this long is taken back. @default 30000 */
  heartbeatTimeoutInMs?: number;
  /** Jobs looked at per round trip. @default 500 */
  pageSize?: number;
}

export interface ReconcileReport {
  redispatched: number;
  expired: number;
}

export interface Reconciler {
  /**
   * One pass. With `recoverAll` (startup of a process whose transport is not durable), every
   * non-terminal job is dispatched again and every running job is taken back: nothing else can be
   * running them, since their messages and workers died with the previous process.
   */
  reconcile(options?: { recoverAll?: boolean }): Promise<ReconcileReport>;
  /** Runs passes every `intervalInMs` until `stop`. */
  start(): void;
  stop(): Promise<void>;
}

/**
 * The job store is the source of truth and the queue only a delivery mechanism: the reconciler puts
 * back on a queue every job that should have a message and may not (stuck `submitted`, `queued`,
 * `retrying`), and expires `running` jobs whose worker stopped sending heartbeats, through the
 * retry policy.
 */
export function createReconciler(deps: ReconcilerDeps, options: ReconcilerOptions): Reconciler {
  const clock = deps.clock ?? (() => new Date());
  const intervalInMs = options.intervalInMs ?? 10_000;
  const graceInMs = options.dispatchGraceInMs ?? 30_000;
  const heartbeatTimeoutInMs = options.heartbeatTimeoutInMs ?? 30_000;
  const pageSize = options.pageSize ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  async function expire(job: Job, now: Date): Promise<Job | undefined> {
    const error = new OrchestratorError(
      'LOCK_LOST',
      `worker stopped responding (no heartbeat since ${job.heartbeatAt ?? job.updatedAt})`,
      { retryable: true },
    );
    const decision = decideAfterFailure(job, error, { policy: options.retryPolicy, now });
    const stored = await deps.store.updateJob(decision.job, { ifVersion: job.version });
    if (stored) deps.logger.warn({ jobId: job.id, outcome: decision.kind }, 'running job expired');
    return stored && stored.state === 'retrying' ? stored : undefined;
  }

  async function reconcile({ recoverAll = false } = {}): Promise<ReconcileReport> {
    const report: ReconcileReport = { redispatched: 0, expired: 0 };
    const startedAt = clock();
    const seen = new Set<string>();
    for (;;) {
      const now = clock();
      const found = await deps.store.findJobsToRecover({
        undispatchedBefore: recoverAll ? startedAt : new Date(now.getTime() - graceInMs),
        ...(recoverAll && { dispatchedBefore: startedAt }),
        heartbeatBefore: recoverAll ? startedAt : new Date(now.getTime() - heartbeatTimeoutInMs),
        limit: pageSize,
      });
      const fresh = found.filter((job) => !seen.has(job.id));
      if (fresh.length === 0) break;
      const toDispatch: Job[] = [];
      for (const job of fresh) {
        seen.add(job.id);
        if (job.state === 'running') {
          const retrying = await expire(job, now);
          report.expired++;
          if (retrying) toDispatch.push(retrying);
        } else {
          toDispatch.push(job);
        }
      }
      if (toDispatch.length > 0) {
        await dispatchJobs(deps.transport, toDispatch, now);
        await deps.store.markDispatched(
          toDispatch.map((j) => j.id),
          now,
        );
        report.redispatched += toDispatch.length;
      }
      if (found.length < pageSize) break;
    }
    if (report.redispatched > 0 || report.expired > 0) deps.logger.info({ ...report, recoverAll }, 'reconciled');
    return report;
  }

  const tick = (): void => {
    running = reconcile()
      .catch((e: unknown) => deps.logger.error({ err: e }, 'reconcile pass failed; will try again'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalInMs);
      });
  };

  return {
    reconcile,
    start() {
      stopped = false;
      timer = setTimeout(tick, intervalInMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
