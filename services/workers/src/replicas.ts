import type { ReplicaSet } from '@orch/platform/runtime';
import type { Subscription } from '@orch/core';
import { startWorker } from './worker.ts';
import type { WorkerDeps, WorkerOptions } from './worker.ts';

/**
 * In-process worker replicas of one pool, for the embedded system's autoscaling: each replica is a
 * consumer of the pool's lanes with `options.concurrency`, reporting its own presence, like one pod
 * on AKS. Scaling down closes the newest replicas, which drain their in-flight jobs first.
 */
export function createWorkerReplicaSet(deps: WorkerDeps, options: WorkerOptions): ReplicaSet & Subscription {
  const replicas: Subscription[] = [];
  let next = 0;
  let changing = Promise.resolve();

  const scaleTo = async (count: number): Promise<void> => {
    while (replicas.length < count) {
      next += 1;
      replicas.push(await startWorker(deps, { ...options, replicaName: `${options.pool}-${next}` }));
    }
    const removed = replicas.splice(count);
    await Promise.all(removed.map((replica) => replica.close()));
  };

  return {
    count: () => replicas.length,
    scaleTo(count) {
      changing = changing.then(() => scaleTo(count));
      return changing;
    },
    async close() {
      await changing;
      await scaleTo(0);
    },
  };
}
