/** Where a job is in its life. `succeeded`, `failed` and `cancelled` are terminal. */
export type JobState = 'submitted' | 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled';

export const JOB_STATES: readonly JobState[] = [
  'submitted',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
];

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export const isTerminal = (state: JobState): boolean => TERMINAL_STATES.has(state);

export type Priority = 'low' | 'normal' | 'high' | 'urgent';

export const PRIORITIES: readonly Priority[] = ['low', 'normal', 'high', 'urgent'];

/** The queue a job is routed to by the classifier. */
export type PoolQueue = 'actor-jobs' | 'spark-jobs' | 'ml-jobs' | 'batch-jobs';

/** The classifier's decision, stored on the job and shown by the API. */
export interface RouteDecision {
  queue: PoolQueue;
  cost: number;
  reason: string;
}

export interface Transition {
  status: JobState;
  at: string;
  /** Why the transition happened, when it is not obvious (an error, a recovery). */
  note?: string;
}

export interface JobFailure {
  code: string;
  message: string;
}

/** A job record as stored. Timestamps are ISO-8601 strings in UTC. */
export interface Job {
  id: string;
  /**
   * Who owns the job: the tenant of the API key that submitted it ('' when the API runs without
   * authentication). Other tenants never see it. Never changes.
   */
  tenant: string;
  state: JobState;
  /** Incremented by every update; updates are compare-and-set on it. */
  version: number;
  priority: Priority;
  rows: number;
  estimatedRuntimeSec: number;
  latencySensitive: boolean;
  type: string;
  data: Record<string, unknown>;
  decision: RouteDecision | null;
  /** How many times a worker has started the job. */
  attempts: number;
  maxAttempts: number;
  error: JobFailure | null;
  resultKey: string | null;
  /** Azure Batch (or local batch) task running this job, for batch pools. */
  batchTaskId: string | null;
  createdAt: string;
  updatedAt: string;
  /** Last sign of life of the worker running the job. */
  heartbeatAt: string | null;
  /** When a `retrying` job is due again. */
  nextAttemptAt: string | null;
  history: Transition[];
}

/** The body of every queue message: the job store holds the rest (claim check). */
export interface JobMessage {
  jobId: string;
}

/** Blob key of a job's result. */
export const resultKeyFor = (jobId: string): string => `results/${jobId}.json`;
