import type { ConsumeOptions, MessageHandler, QueueTransport, Subscription } from '../ports/queue-transport.ts';
import { PriorityGate } from './priority-gate.ts';

export interface ConsumeLanesOptions extends ConsumeOptions {
  /** Handlers running at once across all lanes. @default 1 */
  concurrency?: number;
  /**
   * Extra slots only the first lane's messages take when all `concurrency` are busy, so its message
   * starts without waiting for a running one to finish. @default 0
   */
  headroom?: number;
}

/**
 * Consumes several queues as one pool of `concurrency` slots, always giving a free slot to a message
 * of the earliest lane that has one waiting. Each lane but the last receives up to twice the
 * concurrency, so a slot that frees finds an urgent message already in hand. Messages waiting for a
 * slot keep their locks renewed like any in-flight message. Priority is strict up to that slack: a
 * high message redelivered after a failure may find its freed slot already given to a waiting
 * standard one. With `headroom`, a first-lane message that finds every slot busy takes a spare
 * slot instead of waiting (up to `headroom` of them at once).
 *
 * `close` lets running handlers finish and hands back the messages still waiting for a slot
 * (abandoned: redelivered elsewhere, at the cost of one delivery count), so a drain takes no
 * longer than the longest running job.
 */
export async function consumeLanes<T>(
  transport: QueueTransport,
  lanes: readonly string[],
  handler: MessageHandler<T>,
  options: ConsumeLanesOptions = {},
): Promise<Subscription> {
  const { headroom = 0, ...transportOptions } = options;
  const concurrency = options.concurrency ?? 1;
  const gate = new PriorityGate(concurrency, lanes.length, { headroom });
  const subscriptions: Subscription[] = [];
  try {
    for (const [index, queue] of lanes.entries()) {
      const prefetch = index < lanes.length - 1 ? concurrency * 2 : concurrency;
      subscriptions.push(
        await transport.consume<T>(
          queue,
          async (message, signal) => {
            const release = await gate.acquire(index, signal);
            try {
              await handler(message, signal);
            } finally {
              release();
            }
          },
          { ...transportOptions, concurrency: prefetch },
        ),
      );
    }
  } catch (e) {
    gate.close();
    await Promise.all(subscriptions.map((s) => s.close()));
    throw e;
  }
  return {
    async close() {
      gate.close();
      await Promise.all(subscriptions.map((s) => s.close()));
    },
  };
}
