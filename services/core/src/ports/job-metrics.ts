import type { PoolQueue, Priority } from '../job/job.ts';

/**
 * What the services report as jobs move, for Prometheus (or anything else) to count. Calls are
 * synchronous and must never throw: metrics must not be able to fail a job.
 */
export interface JobMetrics {
  /**
   * Jobs accepted by the API, by `queue`: the pool the scheduler's classifier will route them to.
   * The API runs the same pure classifier with the same settings, so this agrees with `jobRouted`
   * unless the two services are configured differently.
   */
  jobsSubmitted(queue: PoolQueue, priority: Priority, count: number): void;
  /** The classifier routed a job. */
  jobRouted(queue: PoolQueue, priority: Priority): void;
  /** A job started; `dispatchLatencyInMs` is from its submission to now (first attempt) or its due time. */
  jobStarted(queue: PoolQueue, priority: Priority, dispatchLatencyInMs: number): void;
  /** A job reached `succeeded` or `failed` (not a retried failure); `durationInMs` of the last attempt. */
  jobFinished(queue: PoolQueue, priority: Priority, outcome: 'succeeded' | 'failed', durationInMs: number): void;
  /** An attempt failed and the job will run again. */
  jobRetried(queue: PoolQueue, priority: Priority): void;
  /** Work in progress in this process changed by `delta` (jobs for AKS pools). */
  inFlightChanged(queue: PoolQueue, delta: number): void;
  /** Batch tasks this process is tracking, by state. */
  batchTasksObserved(queue: PoolQueue, counts: { pending: number; running: number }): void;
}

/** Reports nothing: the default where no metrics are wired (tests, the task runner). */
export const NO_JOB_METRICS: JobMetrics = {
  jobsSubmitted: () => undefined,
  jobRouted: () => undefined,
  jobStarted: () => undefined,
  jobFinished: () => undefined,
  jobRetried: () => undefined,
  inFlightChanged: () => undefined,
  batchTasksObserved: () => undefined,
};
