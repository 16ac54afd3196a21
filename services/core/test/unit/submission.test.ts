import { describe, expect, it } from 'vitest';
import { isOrchestratorError, MAX_BATCH_SIZE, newJob, parseBatchSubmission, parseSubmission } from '@orch/core';

const types = new Set(['synthetic']);

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (isOrchestratorError(e) && e.code === 'VALIDATION_FAILED')
      return e.details as { path: string; message: string }[];
    throw e;
  }
  throw new Error('expected a validation failure');
}

describe('job submission', () => {
  it('fills every default', () => {
    expect(parseSubmission({}, types)).toEqual({
      rows: 1000,
      estimated_runtime_sec: 10,
      priority: 'normal',
      latency_sensitive: false,
      type: 'synthetic',
      data: {},
    });
    expect(parseSubmission(undefined, types).rows).toBe(1000);
  });

  it.each([
    [{ rows: null }, 'rows'],
    [{ rows: -1 }, 'rows'],
    [{ rows: 1.5 }, 'rows'],
    [{ rows: '10' }, 'rows'],
    [{ estimated_runtime_sec: -0.1 }, 'estimated_runtime_sec'],
    [{ estimated_runtime_sec: null }, 'estimated_runtime_sec'],
    [{ priority: 'critical' }, 'priority'],
    [{ priority: null }, 'priority'],
    [{ latency_sensitive: 'yes' }, 'latency_sensitive'],
    [{ type: 'nope' }, 'type'],
    [{ type: null }, 'type'],
    [{ data: [] }, 'data'],
    [{ data: null }, 'data'],
    [{ prority: 'high' }, 'prority'],
  ])('rejects %j naming %s', (body, path) => {
    expect(issuesOf(() => parseSubmission(body, types)).map((i) => i.path)).toContain(path);
  });

  it('rejects a non-object body, including an explicit null', () => {
    expect(() => parseSubmission(null, types)).toThrow();
    expect(() => parseSubmission([1, 2], types)).toThrow(/expected object/i);
    expect(() => parseSubmission('x', types)).toThrow();
  });

  it('validates a whole batch before accepting any job, naming the bad index', () => {
    const issues = issuesOf(() => parseBatchSubmission({ jobs: [{}, { rows: -5 }, { type: 'nope' }] }, types));
    expect(issues.map((i) => i.path)).toEqual(['jobs.1.rows']);
    const typeIssues = issuesOf(() => parseBatchSubmission({ jobs: [{}, {}, { type: 'nope' }] }, types));
    expect(typeIssues.map((i) => i.path)).toEqual(['jobs.2.type']);
  });

  it('bounds a batch to 1..1000 jobs', () => {
    expect(() => parseBatchSubmission({ jobs: [] }, types)).toThrow();
    expect(() =>
      parseBatchSubmission({ jobs: Array.from({ length: MAX_BATCH_SIZE + 1 }, () => ({})) }, types),
    ).toThrow();
    expect(parseBatchSubmission({ jobs: Array.from({ length: MAX_BATCH_SIZE }, () => ({})) }, types)).toHaveLength(
      1000,
    );
  });

  it('creates a job in state submitted with its first transition recorded', () => {
    const now = new Date('2026-11-22T10:00:00.000Z');
    const job = newJob(parseSubmission({ rows: 7, priority: 'urgent' }, types), { id: 'a', now, maxAttempts: 3 });
    expect(job).toMatchObject({
      id: 'a',
      state: 'submitted',
      rows: 7,
      priority: 'urgent',
      attempts: 0,
      decision: null,
    });
    expect(job.history).toEqual([{ status: 'submitted', at: now.toISOString() }]);
  });
});
