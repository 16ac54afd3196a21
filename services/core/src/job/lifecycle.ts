import { OrchestratorError } from '../errors.ts';
import type { Job, JobState } from './job.ts';

/**
 * The lifecycle: submitted → queued → running → succeeded | failed | cancelled, with `retrying`
 * between attempts. A retrying job runs again directly when its delayed message arrives.
 */
const ALLOWED: Readonly<Record<JobState, readonly JobState[]>> = {
  submitted: ['queued', 'cancelled', 'failed'],
  queued: ['running', 'cancelled', 'failed'],
  running: ['succeeded', 'failed', 'retrying', 'cancelled'],
  retrying: ['running', 'cancelled', 'failed'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export const canTransition = (from: JobState, to: JobState): boolean => ALLOWED[from].includes(to);

export interface TransitionOptions {
  at: Date;
  /** Fields that change together with the state. */
  patch?: Partial<Omit<Job, 'id' | 'state' | 'version' | 'history' | 'createdAt' | 'updatedAt'>>;
  note?: string;
}

/**
 * Returns the job moved to `to`, with the transition recorded in its history. Pure: the caller
 * persists the result with a compare-and-set on `version`. Throws `INVALID_TRANSITION` when the
 * lifecycle forbids the move (e.g. anything out of a terminal state).
 */
export function transition(job: Job, to: JobState, options: TransitionOptions): Job {
  if (!canTransition(job.state, to)) {
    throw new OrchestratorError('INVALID_TRANSITION', `job ${job.id} cannot go from ${job.state} to ${to}`, {
      details: { from: job.state, to },
    });
  }
  const at = options.at.toISOString();
  const entry = options.note === undefined ? { status: to, at } : { status: to, at, note: options.note };
  return {
    ...job,
    ...options.patch,
    state: to,
    updatedAt: at,
    history: [...job.history, entry],
  };
}
