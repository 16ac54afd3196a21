import { isOrchestratorError } from '@orch/core';
import type { OrchestratorError } from '@orch/core';
import pRetry from 'p-retry';
import type { Logger } from './logger.ts';

export interface UntilAvailableOptions {
  /** Stop waiting when this aborts (e.g. the message's lock was lost). */
  signal?: AbortSignal;
  logger?: Logger;
  /** What is being done, for the log. */
  what: string;
  /** Give up (rethrow the last error) after this long. @default 60000 */
  maxWaitInMs?: number;
}

/**
 * Runs `operation`, and while it fails with `DEPENDENCY_UNAVAILABLE` (the database or storage is
 * restarting, a broker connection is being re-established), waits and tries again with backoff
 * (0.2 s doubling to 5 s, jittered), up to `maxWaitInMs`. Any other error is rethrown at once.
 *
 * A message handler uses it so that an outage holds the message instead of handing it back: a
 * redelivery loop while the database is down would burn the message's delivery count in
 * milliseconds and dead-letter a job that is perfectly fine.
 */
export async function untilAvailable<T>(operation: () => Promise<T>, options: UntilAvailableOptions): Promise<T> {
  // The first call goes straight through: this wraps every store call on the hot paths, and the
  // retry machinery is only needed once something failed.
  let firstError: OrchestratorError;
  try {
    return await operation();
  } catch (error) {
    if (!isUnavailable(error)) throw error;
    firstError = error;
  }
  let replayFirst = true;
  const attempt = (): Promise<T> => {
    if (!replayFirst) return operation();
    replayFirst = false;
    return Promise.reject(firstError);
  };
  const maxRetryTime = options.maxWaitInMs ?? 60_000;
  return pRetry(attempt, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 200,
    maxTimeout: 5_000,
    factor: 2,
    randomize: true,
    maxRetryTime,
    ...(options.signal && { signal: options.signal }),
    shouldRetry: ({ error }) => isUnavailable(error),
    onFailedAttempt: ({ error, attemptNumber, retryDelay }) => {
      if (isUnavailable(error)) {
        options.logger?.warn(
          { err: error.message, attempt: attemptNumber, retryInMs: retryDelay },
          `${options.what}: a dependency is unavailable; waiting for it`,
        );
      }
    },
  });
}

const isUnavailable = (error: unknown): error is OrchestratorError =>
  isOrchestratorError(error) && error.code === 'DEPENDENCY_UNAVAILABLE';
