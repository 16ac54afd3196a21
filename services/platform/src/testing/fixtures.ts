import { newJob, parseSubmission, transition } from '@orch/core';
import type { Job, JobSubmissionInput, PoolQueue } from '@orch/core';

/** A job as the API would create it (state `submitted`), for tests. */
export function makeJob(
  input: JobSubmissionInput = {},
  options: { id?: string; now?: Date; maxAttempts?: number } = {},
): Job {
  return newJob(parseSubmission(input, new Set(['synthetic'])), {
    id: options.id ?? crypto.randomUUID(),
    now: options.now ?? new Date(),
    maxAttempts: options.maxAttempts ?? 3,
  });
}

/** A job as the scheduler leaves it: `queued` for `queue`. */
export function makeQueuedJob(
  queue: PoolQueue,
  input: JobSubmissionInput = {},
  options: { id?: string; now?: Date; maxAttempts?: number } = {},
): Job {
  const job = makeJob(input, options);
  const at = options.now ?? new Date();
  return transition(job, 'queued', { at, patch: { decision: { queue, cost: 1, reason: 'test' } } });
}

/** Polls `fn` until it returns a value other than `undefined`, or fails after `timeoutInMs`. */
export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutInMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutInMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * `target` with some members replaced, to make one port method misbehave in a test. Other methods
 * stay bound to `target`, so adapters whose methods use private fields keep working.
 */
export function withOverrides<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(t, property, t);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(t) : value;
    },
  });
}
