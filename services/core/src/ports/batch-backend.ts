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
  jobs: BatchTaskJob[];
}

export interface BatchTaskJob {
  jobId: string;
  type: string;
  rows: number;
  estimatedRuntimeSec: number;
  data: Record<string, unknown>;
  attempt: number;
}

export type BatchTaskState =
  | { state: 'pending' | 'running' }
  | { state: 'completed'; exitCode: number; failure?: string }
  | { state: 'unknown' };

/** Per-job outcomes written by the task runner. */
export interface BatchTaskManifest {
  taskId: string;
  outcomes: BatchJobOutcome[];
}

export type BatchJobOutcome =
  | { jobId: string; status: 'succeeded'; resultKey: string }
  | { jobId: string; status: 'failed'; error: { code: string; message: string }; retryable: boolean };

export const batchManifestKey = (taskId: string): string => `batch-tasks/${taskId}.json`;

/** Environment variable through which a task's spec reaches the task runner. */
export const TASK_SPEC_ENV = 'ORCH_TASK_SPEC';
