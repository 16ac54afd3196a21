import type { PoolQueue } from '../job/job.ts';

/**
 * How a pool's worker replicas follow its queue, as KEDA's `azure-servicebus` / `rabbitmq` trigger
 * and the Kubernetes HPA behind it compute it. The ScaledObjects under `k8s/` use these numbers; a
 * test keeps them equal.
 */
export interface ScalingRule {
  /** KEDA `messageCount` / `value`: the active messages one replica is expected to handle. */
  messagesPerReplica: number;
  minReplicas: number;
  maxReplicas: number;
  /**
   * HPA `behavior.scaleDown.stabilizationWindowSeconds` (in ms): a scale-down goes no lower than the
   * highest recommendation of this window, so a short dip does not shed replicas.
   */
  scaleDownStabilizationInMs: number;
  /** HPA tolerance: no change while the usage ratio is within 1 ± this. @default 0.1 */
  tolerance?: number;
  /** HPA `behavior.scaleUp` rate limits. @default none: any step at once */
  scaleUp?: RateLimits;
  /** HPA `behavior.scaleDown` rate limits. @default none: any step at once */
  scaleDown?: RateLimits;
}

/**
 * HPA scaling policies: each bounds how far the replicas may move from where they stood
 * `periodInMs` ago; `select: 'Max'` applies the policy allowing the largest change, `'Min'` the
 * smallest.
 */
export interface RateLimits {
  policies: readonly { type: 'Pods' | 'Percent'; value: number; periodInMs: number }[];
  select: 'Max' | 'Min';
}

/** The ScaledObjects' targets for the AKS pools (actor: 5 messages per replica, spark: 3; 1–10 replicas). */
const SCALE_UP: RateLimits = {
  select: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodInMs: 15_000 },
    { type: 'Percent', value: 100, periodInMs: 15_000 },
  ],
};
const SCALE_DOWN: RateLimits = { select: 'Min', policies: [{ type: 'Pods', value: 1, periodInMs: 60_000 }] };

export const POOL_SCALING: Readonly<Record<'actor-jobs' | 'spark-jobs', ScalingRule>> = {
  'actor-jobs': {
    messagesPerReplica: 5,
    minReplicas: 1,
    maxReplicas: 10,
    scaleDownStabilizationInMs: 300_000,
    scaleUp: SCALE_UP,
    scaleDown: SCALE_DOWN,
  },
  'spark-jobs': {
    messagesPerReplica: 3,
    minReplicas: 1,
    maxReplicas: 10,
    scaleDownStabilizationInMs: 300_000,
    scaleUp: SCALE_UP,
    scaleDown: SCALE_DOWN,
  },
};

export const isScaledPool = (queue: PoolQueue): queue is keyof typeof POOL_SCALING => queue in POOL_SCALING;

/**
 * The replicas one metric asks for, before stabilization: `ceil(active / messagesPerReplica)`
 * (KEDA's AverageValue target), unchanged while within the tolerance of the current count, clamped
 * to [min, max].
 */
export function recommendReplicas(activeMessages: number, currentReplicas: number, rule: ScalingRule): number {
  const tolerance = rule.tolerance ?? 0.1;
  const clamp = (n: number): number => Math.min(rule.maxReplicas, Math.max(rule.minReplicas, n));
  const wanted = Math.ceil(Math.max(0, activeMessages) / rule.messagesPerReplica);
  if (currentReplicas > 0) {
    const ratio = activeMessages / (currentReplicas * rule.messagesPerReplica);
    if (Math.abs(ratio - 1) <= tolerance) return clamp(currentReplicas);
  }
  return clamp(wanted);
}

export interface ScalingDecision {
  /** Replicas to run now. */
  replicas: number;
  /** What the metrics alone asked for (before the scale-down window). */
  recommended: number;
}

export interface PoolAutoscaler {
  /**
   * Decides the replica count from the active messages of each of the pool's queues (its lanes) at
   * time `nowInMs`. The lanes are summed, as the ScaledObjects' `scalingModifiers` formula
   * (`high + standard`) does: every waiting message needs capacity, whichever lane it is in.
   */
  decide(activeByQueue: readonly number[], currentReplicas: number, nowInMs: number): ScalingDecision;
}

/**
 * The HPA's decision loop for one pool: the recommendation for the lanes' total, scaled up at once
 * and down only to the highest recommendation of the stabilization window, each step bounded by the
 * rule's rate limits (as the HPA computes them: from the replicas of `periodInMs` ago, given the
 * changes it made since). Pure: the caller reads the depths and applies the decision, which the
 * autoscaler assumes it did.
 */
export function createPoolAutoscaler(rule: ScalingRule): PoolAutoscaler {
  const history: { at: number; replicas: number }[] = [];
  const changes: { at: number; delta: number }[] = [];
  const longestPeriod = Math.max(
    0,
    ...[...(rule.scaleUp?.policies ?? []), ...(rule.scaleDown?.policies ?? [])].map((p) => p.periodInMs),
  );

  /** The furthest the rate limits let the replicas go from `current` in this direction. */
  const limit = (current: number, nowInMs: number, up: boolean): number => {
    const limits = up ? rule.scaleUp : rule.scaleDown;
    if (!limits || limits.policies.length === 0) return up ? Infinity : -Infinity;
    const bounds = limits.policies.map((policy) => {
      const moved = changes
        .filter((c) => c.at > nowInMs - policy.periodInMs && (up ? c.delta > 0 : c.delta < 0))
        .reduce((sum, c) => sum + c.delta, 0);
      const start = current - moved;
      if (policy.type === 'Pods') return up ? start + policy.value : start - policy.value;
      return up ? Math.ceil(start * (1 + policy.value / 100)) : Math.floor(start * (1 - policy.value / 100));
    });
    // 'Max' allows the largest change: the highest bound up, the lowest bound down.
    const widest = (up ? limits.select === 'Max' : limits.select === 'Min') ? Math.max : Math.min;
    return widest(...bounds);
  };

  return {
    decide(activeByQueue, currentReplicas, nowInMs) {
      const active = activeByQueue.reduce((sum, n) => sum + n, 0);
      const recommended = recommendReplicas(active, currentReplicas, rule);
      history.push({ at: nowInMs, replicas: recommended });
      while (history.length > 0 && (history[0]?.at ?? nowInMs) < nowInMs - rule.scaleDownStabilizationInMs)
        history.shift();
      const stabilized = Math.max(...history.map((h) => h.replicas));
      let replicas = recommended >= currentReplicas ? recommended : Math.min(currentReplicas, stabilized);
      if (replicas > currentReplicas) replicas = Math.min(replicas, limit(currentReplicas, nowInMs, true));
      if (replicas < currentReplicas) replicas = Math.max(replicas, limit(currentReplicas, nowInMs, false));
      if (replicas !== currentReplicas) changes.push({ at: nowInMs, delta: replicas - currentReplicas });
      while (changes.length > 0 && (changes[0]?.at ?? nowInMs) <= nowInMs - longestPeriod) changes.shift();
      return { replicas, recommended };
    },
  };
}
