import { describeError, isOrchestratorError } from '../errors.ts';
import type { Job, JobFailure } from './job.ts';
import { transition } from './lifecycle.ts';

/** How failed attempts are retried: exponential backoff with jitter, up to `maxAttempts` in all. */
export interface RetryPolicy {
  /** Attempts in all, the first included. @default 3 */
  maxAttempts: number;
  /** Delay before the second attempt, before jitter. @default 1000 */
  baseDelayInMs: number;
  /** Cap on any delay. @default 60000 */
  maxDelayInMs: number;
  /** Fraction of each delay that is random (0 = none, 1 = full jitter). @default 0.5 */
  jitter: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 3,
  baseDelayInMs: 1000,
  maxDelayInMs: 60_000,
  jitter: 0.5,
});

/**
 * Delay before the attempt after `attempt` (1-based): min(max, base · 2^(attempt−1)), of which a
 * `jitter` fraction is drawn at random so that failures do not retry in lockstep.
 */
export function retryDelayInMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponential = policy.baseDelayInMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelayInMs, exponential);
  return Math.round(capped * (1 - policy.jitter) + capped * policy.jitter * random());
}

export type FailureDecision = { kind: 'retry'; job: Job; delayInMs: number } | { kind: 'fail'; job: Job };

/** The failure as stored on the job and shown by the API. */
export function toJobFailure(error: unknown): JobFailure {
  return {
    code: isOrchestratorError(error) ? error.code : 'HANDLER_FAILED',
    message: describeError(error).slice(0, 2000),
  };
}

/**
 * Decides what a failed attempt of a running job leads to: another attempt after a backoff, or
 * `failed` when attempts are exhausted or the error says retrying cannot help.
 */
export function decideAfterFailure(
  job: Job,
  error: unknown,
  options: { policy: RetryPolicy; now: Date; random?: () => number },
): FailureDecision {
  const failure = toJobFailure(error);
  const retryable = !isOrchestratorError(error) || error.retryable;
  if (retryable && job.attempts < job.maxAttempts) {
    const delayInMs = retryDelayInMs(options.policy, job.attempts, options.random);
    const next = transition(job, 'retrying', {
      at: options.now,
      note: failure.message,
      patch: {
        error: failure,
        heartbeatAt: null,
        batchTaskId: null,
        nextAttemptAt: new Date(options.now.getTime() + delayInMs).toISOString(),
      },
    });
    return { kind: 'retry', job: next, delayInMs };
  }
  const next = transition(job, 'failed', {
    at: options.now,
    note: failure.message,
    patch: { error: failure, heartbeatAt: null, nextAttemptAt: null },
  });
  return { kind: 'fail', job: next };
}
