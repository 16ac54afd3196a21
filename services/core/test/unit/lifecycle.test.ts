import { describe, expect, it } from 'vitest';
import { canTransition, isOrchestratorError, JOB_STATES, newJob, parseSubmission, transition } from '@orch/core';
import type { Job, JobState } from '@orch/core';

const at = new Date('2026-11-22T10:00:00.000Z');
const later = new Date('2026-11-22T10:00:05.000Z');
const fresh = (): Job => newJob(parseSubmission({}, new Set(['synthetic'])), { id: 'job-1', now: at, maxAttempts: 3 });

const LEGAL: [JobState, JobState][] = [
  ['submitted', 'queued'],
  ['submitted', 'cancelled'],
  ['submitted', 'failed'],
  ['queued', 'running'],
  ['queued', 'cancelled'],
  ['queued', 'failed'],
  ['running', 'succeeded'],
  ['running', 'failed'],
  ['running', 'retrying'],
  ['running', 'cancelled'],
  ['retrying', 'running'],
  ['retrying', 'cancelled'],
  ['retrying', 'failed'],
];

describe('lifecycle', () => {
  it('allows exactly the documented transitions', () => {
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        const expected = LEGAL.some(([f, t]) => f === from && t === to);
        expect(canTransition(from, to), `${from} → ${to}`).toBe(expected);
      }
    }
  });

  it('records every transition with its time, in order', () => {
    const queued = transition(fresh(), 'queued', { at: later });
    const running = transition(queued, 'running', { at: later, patch: { attempts: 1 } });
    expect(running.history).toEqual([
      { status: 'submitted', at: at.toISOString() },
      { status: 'queued', at: later.toISOString() },
      { status: 'running', at: later.toISOString() },
    ]);
    expect(running.updatedAt).toBe(later.toISOString());
    expect(running.attempts).toBe(1);
  });

  it('rejects a transition out of a terminal state with INVALID_TRANSITION', () => {
    const done = transition(transition(transition(fresh(), 'queued', { at }), 'running', { at }), 'succeeded', { at });
    let caught: unknown;
    try {
      transition(done, 'running', { at });
    } catch (e) {
      caught = e;
    }
    expect(isOrchestratorError(caught) && caught.code).toBe('INVALID_TRANSITION');
    expect(() => transition(done, 'cancelled', { at })).toThrow(/cannot go from succeeded to cancelled/);
  });

  it('does not mutate the job it is given', () => {
    const job = fresh();
    transition(job, 'queued', { at: later });
    expect(job.state).toBe('submitted');
    expect(job.history).toHaveLength(1);
  });
});
