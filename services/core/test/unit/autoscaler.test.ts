import { describe, expect, it } from 'vitest';
import { createPoolAutoscaler, POOL_SCALING, recommendReplicas } from '@orch/core';
import type { ScalingRule } from '@orch/core';

const rule: ScalingRule = {
  messagesPerReplica: 5,
  minReplicas: 1,
  maxReplicas: 10,
  scaleDownStabilizationInMs: 60_000,
};

describe('recommendReplicas (KEDA AverageValue target: ceil(active / messagesPerReplica), clamped)', () => {
  it.each([
    [0, 1, 1],
    [1, 1, 1],
    [5, 1, 1],
    [6, 1, 2],
    [23, 1, 5],
    [50, 3, 10],
    [51, 3, 10],
    [10_000, 1, 10],
  ])('given %i active messages and %i replicas, then it recommends %i', (active, current, expected) => {
    expect(recommendReplicas(active, current, rule)).toBe(expected);
  });

  it('given a usage ratio within the 10% tolerance, then it keeps the current count', () => {
    // 4 replicas x 5 = 20 expected: 21 is 5% over, so no change; 23 is 15% over: ceil(23/5) = 5.
    expect(recommendReplicas(21, 4, rule)).toBe(4);
    expect(recommendReplicas(23, 4, rule)).toBe(5);
    expect(recommendReplicas(18, 4, rule)).toBe(4);
    expect(recommendReplicas(17, 4, rule)).toBe(4); // ceil(17/5) = 4 anyway
    expect(recommendReplicas(15, 4, rule)).toBe(3);
  });

  it('given the spark rule, then 3 messages make one replica', () => {
    expect(recommendReplicas(7, 1, POOL_SCALING['spark-jobs'])).toBe(3);
  });
});

describe('createPoolAutoscaler (HPA loop)', () => {
  it('given a backlog, when it grows, then it scales up at once', () => {
    const scaler = createPoolAutoscaler(rule);
    expect(scaler.decide([0, 12], 1, 0)).toStrictEqual({ replicas: 3, recommended: 3 });
    expect(scaler.decide([0, 40], 3, 1000).replicas).toBe(8);
  });

  it('given several lanes, then their messages are summed (the ScaledObjects’ `high + standard` formula)', () => {
    const scaler = createPoolAutoscaler(rule);
    expect(scaler.decide([12, 30], 1, 0).replicas).toBe(9);
    expect(scaler.decide([10, 10], 9, 1000).replicas).toBe(9); // scale-down waits for the window
  });

  it('given the backlog drains, then it scales down only after the stabilization window', () => {
    const scaler = createPoolAutoscaler(rule);
    expect(scaler.decide([50], 1, 0).replicas).toBe(10);
    expect(scaler.decide([0], 10, 10_000).replicas).toBe(10);
    expect(scaler.decide([0], 10, 59_000).replicas).toBe(10);
    // The recommendation of 10 (t=0) has left the window at t=61s; later ones are all 1.
    expect(scaler.decide([0], 10, 61_000)).toStrictEqual({ replicas: 1, recommended: 1 });
  });

  it('given a dip inside the window, then it scales down to the highest recent recommendation', () => {
    const scaler = createPoolAutoscaler(rule);
    scaler.decide([50], 1, 0);
    scaler.decide([20], 10, 30_000);
    expect(scaler.decide([0], 10, 65_000).replicas).toBe(4);
    expect(scaler.decide([0], 4, 95_000).replicas).toBe(1);
  });

  describe('with the ScaledObjects’ rate limits', () => {
    const limited: ScalingRule = { ...POOL_SCALING['actor-jobs'], scaleDownStabilizationInMs: 0 };

    it('given a sudden backlog, then it adds at most max(4 pods, 100%) per 15 s', () => {
      const scaler = createPoolAutoscaler(limited);
      expect(scaler.decide([100], 1, 0)).toStrictEqual({ replicas: 5, recommended: 10 });
      expect(scaler.decide([100], 5, 10_000).replicas).toBe(5); // this period already added 4
      expect(scaler.decide([100], 5, 15_001).replicas).toBe(10); // a new period: max(5 + 4, 5 × 2)
    });

    it('given the backlog drains, then it removes at most one pod a minute', () => {
      const scaler = createPoolAutoscaler(limited);
      expect(scaler.decide([0], 10, 100_000)).toStrictEqual({ replicas: 9, recommended: 1 });
      expect(scaler.decide([0], 9, 130_000).replicas).toBe(9);
      expect(scaler.decide([0], 9, 160_001).replicas).toBe(8);
    });
  });
});
