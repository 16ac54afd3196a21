import { describe, expect, it } from 'vitest';
import {
  decideAfterFailure,
  DEFAULT_RETRY_POLICY,
  newJob,
  OrchestratorError,
  parseSubmission,
  retryDelayInMs,
  transition,
} from '@orch/core';
import type { Job } from '@orch/core';

const policy = { maxAttempts: 3, baseDelayInMs: 1000, maxDelayInMs: 5000, jitter: 0.5 };
const now = new Date('2026-11-22T10:00:00.000Z');

function runningJob(attempts: number): Job {
  const job = newJob(parseSubmission({}, new Set(['synthetic'])), { id: 'j', now, maxAttempts: 3 });
  return transition(transition(job, 'queued', { at: now }), 'running', { at: now, patch: { attempts } });
}

describe('retry policy', () => {
  it('doubles the delay per attempt, capped, with the jitter fraction drawn at random', () => {
    expect(retryDelayInMs(policy, 1, () => 0)).toBe(500);
    expect(retryDelayInMs(policy, 1, () => 1)).toBe(1000);
    expect(retryDelayInMs(policy, 2, () => 1)).toBe(2000);
    expect(retryDelayInMs(policy, 3, () => 1)).toBe(4000);
    expect(retryDelayInMs(policy, 10, () => 1)).toBe(5000);
    expect(retryDelayInMs(policy, 10, () => 0)).toBe(2500);
  });

  it('without jitter the delay is exact', () => {
    expect(retryDelayInMs({ ...policy, jitter: 0 }, 2, Math.random)).toBe(2000);
  });

  it('defaults to 3 attempts starting at 1 s', () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({ maxAttempts: 3, baseDelayInMs: 1000 });
  });

  it('retries a failed attempt while attempts remain, recording the error and when the next is due', () => {
    const decision = decideAfterFailure(runningJob(1), new Error('boom'), { policy, now, random: () => 1 });
    expect(decision.kind).toBe('retry');
    expect(decision.job.state).toBe('retrying');
    expect(decision.job.error).toEqual({ code: 'HANDLER_FAILED', message: 'boom' });
    expect(decision.job.nextAttemptAt).toBe(new Date(now.getTime() + 1000).toISOString());
    expect(decision.kind === 'retry' && decision.delayInMs).toBe(1000);
  });

  it('fails the job once attempts are exhausted', () => {
    const decision = decideAfterFailure(runningJob(3), new Error('boom'), { policy, now });
    expect(decision.kind).toBe('fail');
    expect(decision.job.state).toBe('failed');
    expect(decision.job.error?.message).toBe('boom');
  });

  it('fails at once on a non-retryable error, keeping its code', () => {
    const error = new OrchestratorError('VALIDATION_FAILED', 'bad input');
    const decision = decideAfterFailure(runningJob(1), error, { policy, now });
    expect(decision.kind).toBe('fail');
    expect(decision.job.error).toEqual({ code: 'VALIDATION_FAILED', message: 'bad input' });
  });

  it('retries a retryable OrchestratorError', () => {
    const error = new OrchestratorError('JOB_TIMEOUT', 'too slow', { retryable: true });
    expect(decideAfterFailure(runningJob(1), error, { policy, now }).kind).toBe('retry');
  });
});
