import type { JobState, JobSubmissionInput, PoolQueue, Priority } from '@orch/core';

/**
 * The API's wire format as the CLI reads it (snake_case, as in the OpenAPI document at
 * `GET /openapi.json`). The CLI prints these objects unchanged with `--json`.
 */

/** A submission body: every field is optional, the API fills in the defaults. */
export type SubmissionBody = JobSubmissionInput;

export interface SubmitAccepted {
  job_id: string;
  status: 'submitted';
}

export interface BatchAccepted {
  job_ids: string[];
  status: 'submitted';
}

export interface TransitionView {
  status: JobState;
  at: string;
  note?: string;
}

export interface JobView {
  job_id: string;
  status: JobState;
  queue: PoolQueue | null;
  cost: number | null;
  reason: string | null;
  priority: Priority;
  rows: number;
  estimated_runtime_sec: number;
  latency_sensitive: boolean;
  type: string;
  data: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  created_at: string;
  updated_at: string;
  history: TransitionView[];
  error: { code: string; message: string } | null;
  result_url: string | null;
}

export interface JobPage {
  jobs: JobView[];
  next_cursor: string | null;
}

export interface DepthView {
  active: number;
  scheduled: number;
  dead_letter: number;
}

/** A queue's depth, summed over its lanes (`high` is drained first). */
export interface QueueDepthView extends DepthView {
  lanes?: Record<string, DepthView>;
}

export interface QueuesStatus {
  /** The ingest queue (`jobqueue`) and each pool queue, by name. */
  queues: Record<string, QueueDepthView>;
}

/** `GET /jobs` filters. */
export interface JobQuery {
  status?: JobState;
  queue?: PoolQueue;
  /** Page size, 1–500 (the API's default is 50). */
  limit?: number;
  cursor?: string;
}
