/* eslint-disable @typescript-eslint/require-await -- handlers implement an async port; many have nothing to await */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OrchestratorError, isOrchestratorError } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import { createMemoryTransport } from '@orch/platform/memory';
import { describeQueueTransportContract } from '@orch/platform/testing';

const lockDurationInMs = 300;
const maxDeliveryCount = 4;

describeQueueTransportContract('memory', async () => createMemoryTransport({ lockDurationInMs, maxDeliveryCount }), {
  lockDurationInMs,
  maxDeliveryCount,
});

/** Polls until `assertion` passes; bounded, so a wrong transport fails instead of hanging. */
async function eventually(assertion: () => unknown, timeoutInMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

describe('createMemoryTransport', () => {
  let transport: QueueTransport;
  let queue: string;

  beforeEach(() => {
    transport = createMemoryTransport({ lockDurationInMs, maxDeliveryCount });
    queue = `test-${randomUUID()}`;
  });

  afterEach(() => transport.close());

  it('describes itself as the non-durable memory transport', () => {
    expect(transport.kind).toBe('memory');
    expect(transport.durable).toBe(false);
  });

  it('given a body, when the sender or a handler mutates it, then redelivery still sees the original', async () => {
    const body = { tags: ['a'], nested: { count: 1 } };
    const seen: { tags: string[]; nested: { count: number } }[] = [];
    await transport.send(queue, body);
    body.tags.push('mutated by sender');

    await transport.consume<typeof body>(queue, async (message) => {
      seen.push(structuredClone(message.body));
      message.body.tags.push('mutated by handler');
      message.body.nested.count++;
      if (message.deliveryCount === 1) throw new Error('retry');
    });

    await eventually(() => expect(seen).toHaveLength(2));
    expect(seen).toEqual([
      { tags: ['a'], nested: { count: 1 } },
      { tags: ['a'], nested: { count: 1 } },
    ]);
  });

  it('given a closed transport, when sending, then it rejects with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    await transport.close();

    const sending = transport.send(queue, { late: true });
    await expect(sending).rejects.toSatisfy(
      (e: unknown) => isOrchestratorError(e) && e.code === 'DEPENDENCY_UNAVAILABLE' && e.retryable,
    );
    await expect(transport.sendBatch(queue, [{ body: 1 }])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(transport.consume(queue, async () => {})).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('given an aborted signal, when sending, then it rejects and enqueues nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));

    await expect(transport.send(queue, 1, { abortSignal: controller.signal })).rejects.toThrow('caller gave up');
    await expect(transport.sendBatch(queue, [{ body: 1 }], { abortSignal: controller.signal })).rejects.toThrow(
      'caller gave up',
    );
    expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 });
  });

  it('given a backlog, when consumed one at a time, then messages come in FIFO order and an abandoned one comes first again', async () => {
    await transport.sendBatch(
      queue,
      [1, 2, 3, 4].map((n) => ({ body: n })),
    );
    const order: string[] = [];

    await transport.consume<number>(queue, async (message) => {
      order.push(`${message.body}#${message.deliveryCount}`);
      if (message.body === 2 && message.deliveryCount === 1) throw new Error('again');
    });

    await eventually(() => expect(order).toHaveLength(5));
    expect(order).toEqual(['1#1', '2#1', '2#2', '3#1', '4#1']);
  });

  it('given scheduled messages, when they fall due, then they activate in due order', async () => {
    const order: number[] = [];
    await transport.sendBatch(queue, [
      { body: 3, delayInMs: 90 },
      { body: 1, delayInMs: 30 },
      { body: 2, delayInMs: 60 },
    ]);
    expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 3, deadLetter: 0 });

    await transport.consume<number>(queue, async (message) => {
      order.push(message.body);
    });

    await eventually(() => expect(order).toEqual([1, 2, 3]));
  });

  it('given per-queue overrides, when a message keeps failing, then that queue dead-letters after its own maxDeliveryCount', async () => {
    const strict = `strict-${randomUUID()}`;
    const overridden = createMemoryTransport({ maxDeliveryCount: 5, queues: { [strict]: { maxDeliveryCount: 1 } } });
    try {
      const attempts: Record<string, number> = {};
      const handler = async (message: { body: string }): Promise<void> => {
        attempts[message.body] = (attempts[message.body] ?? 0) + 1;
        throw new Error('nope');
      };
      await overridden.consume(strict, handler);
      await overridden.consume(queue, handler);

      await overridden.send(strict, 'strict');
      await overridden.send(queue, 'default');

      await eventually(async () => expect((await overridden.getQueueDepth(queue)).deadLetter).toBe(1));
      await eventually(async () => expect((await overridden.getQueueDepth(strict)).deadLetter).toBe(1));
      expect(attempts).toEqual({ strict: 1, default: 5 });
    } finally {
      await overridden.close();
    }
  });

  it('given a handler that outlives its lock at maxDeliveryCount, when the lock expires, then the message is dead-lettered', async () => {
    const once = createMemoryTransport({ lockDurationInMs: 50, maxDeliveryCount: 1 });
    try {
      let aborted: unknown;
      await once.consume(
        queue,
        async (_message, signal) => {
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          aborted = signal.reason;
        },
        { maxAutoLockRenewalDurationInMs: 0 },
      );
      await once.send(queue, 'hung');

      await eventually(async () => expect(await once.getQueueDepth(queue)).toMatchObject({ active: 0, deadLetter: 1 }));
      expect(aborted).toMatchObject({ code: 'LOCK_LOST', retryable: true });
      expect((await once.peekDeadLetters(queue))[0]).toMatchObject({
        reason: 'MaxDeliveryCountExceeded',
        deliveryCount: 1,
      });
    } finally {
      await once.close();
    }
  });

  it('given the default auto-renewal, when a handler runs longer than the lock, then the message is not redelivered', async () => {
    const deliveries: number[] = [];
    const short = createMemoryTransport({ lockDurationInMs: 20 });
    try {
      await short.consume(queue, async (message, signal) => {
        deliveries.push(message.deliveryCount);
        await new Promise((resolve) => setTimeout(resolve, 150));
        expect(signal.aborted).toBe(false);
      });
      await short.send(queue, 'long');

      await eventually(async () =>
        expect(await short.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
      );
      expect(deliveries).toEqual([1]);
    } finally {
      await short.close();
    }
  });

  it('given a non-retryable error thrown as a non-Error value, when handled, then it is abandoned like any unknown failure', async () => {
    const deliveries: number[] = [];
    await transport.consume(queue, async (message) => {
      deliveries.push(message.deliveryCount);
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the transport must cope with any thrown value
      if (message.deliveryCount === 1) throw 'a string';
      throw new OrchestratorError('CONFLICT', 'stale', { retryable: false });
    });
    await transport.send(queue, 'x');

    await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(1));
    expect(deliveries).toEqual([1, 2]);
    expect(await transport.peekDeadLetters(queue)).toMatchObject([{ reason: 'CONFLICT', deliveryCount: 2 }]);
  });

  it('given invalid options, when creating or consuming, then it throws a RangeError', async () => {
    expect(() => createMemoryTransport({ lockDurationInMs: 0 })).toThrow(RangeError);
    expect(() => createMemoryTransport({ maxDeliveryCount: 1.5 })).toThrow(RangeError);
    expect(() => createMemoryTransport({ queues: { q: { maxDeliveryCount: 0 } } })).toThrow(RangeError);
    await expect(transport.consume(queue, async () => {}, { concurrency: 0 })).rejects.toThrow(RangeError);
  });

  it('given 100k queued messages, when they are consumed, then each is delivered exactly once and the queue drains', async () => {
    const total = 100_000;
    const seen = new Uint8Array(total);
    let handled = 0;
    for (let start = 0; start < total; start += 10_000) {
      await transport.sendBatch(
        queue,
        Array.from({ length: 10_000 }, (_, i) => ({ body: { n: start + i } })),
      );
    }
    await transport.send(queue, { n: -1 }, { delayInMs: 60_000 });
    expect(await transport.getQueueDepth(queue)).toEqual({ active: total, scheduled: 1, deadLetter: 0 });

    await transport.consume<{ n: number }>(
      queue,
      async (message) => {
        seen[message.body.n] = (seen[message.body.n] ?? 0) + 1;
        handled++;
      },
      { concurrency: 16 },
    );

    await eventually(() => expect(handled).toBe(total), 60_000);
    expect(seen.every((count) => count === 1)).toBe(true);
    expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 1, deadLetter: 0 });
  }, 90_000);
});
