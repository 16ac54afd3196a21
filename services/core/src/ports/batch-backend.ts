import type { PoolQueue } from '../job/job.ts';

/**
 * Runs batch tasks on an elastic pool (Azure Batch in production, child processes locally). A task
 * carries up to 100 jobs; it runs the workers' task runner, which writes each job's result blob and
 * a manifest (`batchManifestKey`) of per-job outcomes. Completion is learned by polling.
 */
export interface BatchBackend {
  readonly kind: string;
  /** Submits tasks to the pool's job. Idempotent per task id. */
  submitTasks(pool: BatchPool, tasks: readonly BatchTaskSpec[]): Promise<void>;
  /** States of the given tasks; a task the backend does not know is `unknown`. */
  getTaskStates(pool: BatchPool, taskIds: readonly string[]): Promise<Map<string, BatchTaskState>>;
  close(): Promise<void>;
}

export type BatchPool = 'ml' | 'batch';

export const batchPoolOf = (queue: PoolQueue): BatchPool | undefined =>
  queue === 'ml-jobs' ? 'ml' : queue === 'batch-jobs' ? 'batch' : undefined;

export interface BatchTaskSpec {
  id: string;
  /** The jobs, inline; empty when they are stored at `specKey` instead. */
  jobs: BatchTaskJob[];
  /**
   * Claim check: a blob holding the full spec (JSON), used when the inline spec would exceed
   * `MAX_INLINE_TASK_SPEC_BYTES` (environment variables and Batch task settings are size-limited).
   */
  specKey?: string;
}

/** Specs larger than this travel as a blob (`batchSpecKey`) rather than inline. */
export const MAX_INLINE_TASK_SPEC_BYTES = 64 * 1024;

export interface BatchTaskJob {
  jobId: string;
  type: string;
  rows: number;
  estimatedRuntimeSec: number;
  data: Record<string, unknown>;
  attempt: number;
}

export type BatchTaskState =
  { state: 'pending' | 'running' } | { state: 'completed'; exitCode: number; failure?: string } | { state: 'unknown' };

/** Per-job outcomes written by the task runner. */
export interface BatchTaskManifest {
  taskId: string;
  outcomes: BatchJobOutcome[];
}

export type BatchJobOutcome =
  | { jobId: string; status: 'succeeded'; resultKey: string }
  | { jobId: string; status: 'failed'; error: { code: string; message: string }; retryable: boolean };

export const batchManifestKey = (taskId: string): string => `batch-tasks/${taskId}/manifest.json`;
export const batchSpecKey = (taskId: string): string => `batch-tasks/${taskId}/spec.json`;

/** Environment variables through which a task's spec, pool and id reach the task runner. */
export const TASK_SPEC_ENV = 'ORCH_TASK_SPEC';
export const TASK_POOL_ENV = 'ORCH_BATCH_POOL';
export const TASK_ID_ENV = 'ORCH_TASK_ID';
