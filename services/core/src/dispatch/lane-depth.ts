import type { PoolQueue } from '../job/job.ts';
import type { QueueTransport } from '../ports/queue-transport.ts';
import { lanesOf } from '../queues.ts';

/** Active messages of each of a pool's lanes (high first): what the pool's autoscaler reads. */
export const activeMessagesOfLanes = (transport: QueueTransport, pool: PoolQueue): Promise<number[]> =>
  Promise.all(lanesOf(pool).map(async (lane) => (await transport.getQueueDepth(lane.queue)).active));
