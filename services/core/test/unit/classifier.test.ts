import { describe, expect, it } from 'vitest';
import { DEFAULT_CLASSIFIER_OPTIONS, classify, estimateCost } from '@orch/core';
import type { Priority } from '@orch/core';

const job = (rows: number, estimatedRuntimeSec: number, priority: Priority = 'normal', latencySensitive = false) => ({
  rows,
  estimatedRuntimeSec,
  priority,
  latencySensitive,
});

describe('classifier', () => {
  it('computes cost as rows/1e6 + runtime/10', () => {
    expect(estimateCost(job(2_000_000, 30))).toBe(5);
  });

  it('multiplies cost by 1.5 for high and urgent, not for low and normal', () => {
    expect(estimateCost(job(0, 20, 'high'))).toBe(3);
    expect(estimateCost(job(0, 20, 'urgent'))).toBe(3);
    expect(estimateCost(job(0, 20, 'low'))).toBe(2);
    expect(estimateCost(job(0, 20, 'normal'))).toBe(2);
  });

  it('routes latency-sensitive jobs to actor-jobs whatever their cost', () => {
    expect(classify(job(50_000_000, 1000, 'low', true)).queue).toBe('actor-jobs');
    expect(classify(job(0, 0, 'normal', true)).queue).toBe('actor-jobs');
  });

  it('uses strict comparisons at the thresholds', () => {
    expect(classify(job(0, 100)).queue).toBe('ml-jobs'); // cost exactly 10
    expect(classify(job(0, 100.001)).queue).toBe('spark-jobs');
    expect(classify(job(0, 40)).queue).toBe('batch-jobs'); // cost exactly 4
    expect(classify(job(0, 40.001)).queue).toBe('ml-jobs');
    expect(classify(job(0, 0)).queue).toBe('batch-jobs');
  });

  it('sends the README example (5M rows, 100 s, normal; cost 15) to spark-jobs: the formula wins', () => {
    const decision = classify(job(5_000_000, 100));
    expect(decision).toMatchObject({ queue: 'spark-jobs', cost: 15 });
    expect(decision.reason).toContain('15');
  });

  it('lets priority push a job over a threshold', () => {
    expect(classify(job(0, 80, 'normal')).queue).toBe('ml-jobs'); // 8
    expect(classify(job(0, 80, 'urgent')).queue).toBe('spark-jobs'); // 12
    expect(classify(job(0, 30, 'high')).queue).toBe('ml-jobs'); // 4.5
  });

  it('honours configured divisors, thresholds and multipliers', () => {
    const options = {
      ...DEFAULT_CLASSIFIER_OPTIONS,
      rowsDivisor: 1000,
      runtimeDivisor: 1,
      sparkThreshold: 100,
      mlThreshold: 50,
      priorityMultipliers: { low: 0.5, normal: 1, high: 2, urgent: 3 },
    };
    expect(classify(job(60_000, 0), options).queue).toBe('ml-jobs'); // 60
    expect(classify(job(60_000, 0, 'low'), options).queue).toBe('batch-jobs'); // 30
    expect(classify(job(40_000, 0, 'urgent'), options).queue).toBe('spark-jobs'); // 120
  });
});
