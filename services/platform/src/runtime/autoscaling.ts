import { createPoolAutoscaler } from '@orch/core';
import type { ScalingRule } from '@orch/core';
import type { Logger } from 'pino';

export interface ReplicaSet {
  /** Replicas running now. */
  count(): number;
  /** Starts or stops replicas until `count()` is `replicas`; stopping drains the stopped ones. */
  scaleTo(replicas: number): Promise<void>;
}

export interface AutoscalingOptions {
  /** For logs: the pool being scaled. */
  pool: string;
  rule: ScalingRule;
  /** Active messages of each of the pool's queues (its lanes). */
  readActive: () => Promise<readonly number[]>;
  replicas: ReplicaSet;
  /** KEDA's `pollingInterval`. */
  intervalInMs: number;
  logger: Logger;
}

export interface Autoscaling {
  /** Stops deciding; the replicas stay as they are (the caller closes them). */
  stop(): Promise<void>;
}

/**
 * Runs a pool's replicas the way KEDA and the HPA would on AKS: every `intervalInMs`, read the
 * active messages of the pool's queues, decide with {@link createPoolAutoscaler}, apply. Starts at
 * `rule.minReplicas`. A failed depth read keeps the current count (and is logged once per streak).
 */
export async function startAutoscaling(options: AutoscalingOptions): Promise<Autoscaling> {
  const { logger, replicas } = options;
  const scaler = createPoolAutoscaler(options.rule);
  await replicas.scaleTo(options.rule.minReplicas);
  let failing = false;
  let stopped = false;

  const tick = async (): Promise<void> => {
    let active: readonly number[];
    try {
      active = await options.readActive();
      if (failing) logger.info({ pool: options.pool }, 'queue depth readable again: autoscaling resumed');
      failing = false;
    } catch (e) {
      if (!failing) logger.warn({ err: e, pool: options.pool }, 'cannot read queue depth: keeping the replica count');
      failing = true;
      return;
    }
    const current = replicas.count();
    const decision = scaler.decide(active, current, Date.now());
    if (decision.replicas === current || stopped) return;
    logger.info(
      { pool: options.pool, from: current, to: decision.replicas, active, recommended: decision.recommended },
      decision.replicas > current ? 'scaling up' : 'scaling down',
    );
    await replicas.scaleTo(decision.replicas);
  };

  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running
      .then(tick)
      .catch((e: unknown) => logger.error({ err: e, pool: options.pool }, 'autoscaling failed'));
  }, options.intervalInMs);
  timer.unref();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
