import type { PoolQueue } from '../job/job.ts';
import type { QueueDepth, QueueTransport } from '../ports/queue-transport.ts';
import { lanesOf } from '../queues.ts';

/** Active messages of each of a pool's lanes (high first): what the pool's autoscaler reads. */
export const activeMessagesOfLanes = (transport: QueueTransport, pool: PoolQueue): Promise<number[]> =>
  Promise.all(lanesOf(pool).map(async (lane) => (await transport.getQueueDepth(lane.queue)).active));

/** The depth of several queues (a queue's lanes) taken together. */
export const sumQueueDepths = (depths: readonly QueueDepth[]): QueueDepth =>
  depths.reduce(
    (sum, d) => ({
      active: sum.active + d.active,
      scheduled: sum.scheduled + d.scheduled,
      deadLetter: sum.deadLetter + d.deadLetter,
    }),
    { active: 0, scheduled: 0, deadLetter: 0 },
  );
