/* eslint-disable @typescript-eslint/require-await -- handlers implement an async port; many have nothing to await */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OrchestratorError } from '@orch/core';
import type { QueueTransport, ReceivedMessage } from '@orch/core';

export interface QueueTransportContractOptions {
  /**
   * The lock duration of the queues the transport creates. The lock-expiry case waits a few of
   * these, so give the transport a short one (a few hundred ms) where the broker allows it.
   * @default 60000
   */
  lockDurationInMs?: number;
  /** The `maxDeliveryCount` of the queues the transport creates. @default 10 */
  maxDeliveryCount?: number;
  /** How long a case waits for an outcome it expects before it fails. @default 10000 */
  waitTimeoutInMs?: number;
}

/**
 * The behaviour every {@link QueueTransport} must have, as a vitest suite (BullMQ conformance
 * style): run it once per adapter, with a `create` that returns a fresh transport configured with
 * the given lock duration and max delivery count. Each case uses a queue of its own and closes the
 * transport after itself. Cases only ever wait for outcomes (bounded by `waitTimeoutInMs`); they
 * never assert how fast something happens.
 */
export function describeQueueTransportContract(
  name: string,
  create: () => Promise<QueueTransport>,
  options: QueueTransportContractOptions = {},
): void {
  const lockDurationInMs = options.lockDurationInMs ?? 60_000;
  const maxDeliveryCount = options.maxDeliveryCount ?? 10;
  const waitTimeoutInMs = options.waitTimeoutInMs ?? 10_000;
  const testTimeoutInMs = 2 * waitTimeoutInMs + 5_000;

  describe(`QueueTransport contract: ${name}`, () => {
    let transport: QueueTransport;
    let queue: string;
    let cleanups: (() => void)[];

    const eventually = <T>(assertion: () => T | Promise<T>, timeoutInMs = waitTimeoutInMs): Promise<T> =>
      retryUntil(assertion, timeoutInMs);
    /** A latch the handlers of a case wait on; always opened before the transport closes. */
    const latch = (): Latch => {
      const created = createLatch();
      cleanups.push(created.open);
      return created;
    };
    const emptyDepth = { active: 0, scheduled: 0, deadLetter: 0 };

    beforeEach(async () => {
      cleanups = [];
      transport = await create();
      queue = `test-${randomUUID()}`;
    });

    afterEach(async () => {
      for (const cleanup of cleanups) cleanup();
      await transport.close();
    });

    it(
      'given a sent message, when it is consumed, then it is delivered once with deliveryCount 1 and its body',
      async () => {
        const body = { jobId: 'job-1', nested: { rows: [1, 2, 3] }, note: 'ünïcødé' };
        const received: ReceivedMessage<typeof body>[] = [];

        await transport.send(queue, body);
        await transport.consume<typeof body>(queue, async (message) => {
          received.push(message);
        });

        await eventually(() => expect(received).toHaveLength(1));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
        expect(received).toHaveLength(1);
        expect(received[0]?.body).toEqual(body);
        expect(received[0]?.deliveryCount).toBe(1);
        expect(received[0]?.id).toEqual(expect.any(String));
        expect(received[0]?.enqueuedAt).toBeInstanceOf(Date);
      },
      testTimeoutInMs,
    );

    it(
      'given a batch of messages, when it is sent with sendBatch, then every message is delivered',
      async () => {
        const bodies = Array.from({ length: 25 }, (_, n) => ({ n }));
        const received: number[] = [];
        await transport.consume<{ n: number }>(queue, async (message) => {
          received.push(message.body.n);
        });

        await transport.sendBatch(
          queue,
          bodies.map((body) => ({ body })),
        );

        await eventually(() => expect([...received].sort((a, b) => a - b)).toEqual(bodies.map((b) => b.n)));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
      },
      testTimeoutInMs,
    );

    it(
      'given a messageId, when the message is delivered, then its id is that messageId',
      async () => {
        const single = `single-${randomUUID()}`;
        const batched = [`batch-${randomUUID()}`, `batch-${randomUUID()}`];
        const ids: string[] = [];
        await transport.consume(queue, async (message) => {
          ids.push(message.id);
        });

        await transport.send(queue, { kind: 'single' }, { messageId: single });
        await transport.sendBatch(
          queue,
          batched.map((messageId) => ({ body: { kind: 'batch' }, messageId })),
        );

        await eventually(() => expect([...ids].sort()).toEqual([single, ...batched].sort()));
      },
      testTimeoutInMs,
    );

    it(
      'given a message sent with a delay, when it is consumed, then it is not delivered before its delay, and is delivered after it',
      async () => {
        const delayInMs = 2_000;
        const deliveredAt: number[] = [];

        const sentAt = Date.now();
        await transport.send(queue, { delayed: true }, { delayInMs });
        await transport.consume(queue, async () => {
          deliveredAt.push(Date.now());
        });
        await sleep(delayInMs / 2);
        expect(deliveredAt).toEqual([]);

        await eventually(() => expect(deliveredAt).toHaveLength(1), delayInMs + waitTimeoutInMs);
        // A little slack for clocks that tick differently in the broker and here.
        expect((deliveredAt[0] ?? 0) - sentAt).toBeGreaterThanOrEqual(delayInMs - 250);
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
      },
      testTimeoutInMs + 2_000,
    );

    it(
      'given a message sent with a long delay, when the depth is read, then it counts as scheduled, not active',
      async () => {
        await transport.send(queue, { later: true }, { delayInMs: 10 * 60_000 });

        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 1, deadLetter: 0 }),
        );
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that resolves, when a message is handled, then it is completed and not redelivered',
      async () => {
        const deliveries: number[] = [];
        await transport.consume(queue, async (message) => {
          deliveries.push(message.deliveryCount);
        });

        await transport.send(queue, { ok: true });

        await eventually(() => expect(deliveries).toEqual([1]));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
        expect(deliveries).toEqual([1]);
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that throws a plain error, when a message is handled, then it is redelivered with deliveryCount incremented',
      async () => {
        const deliveries: ReceivedMessage<{ attempt: string }>[] = [];
        await transport.consume<{ attempt: string }>(queue, async (message) => {
          deliveries.push(message);
          if (message.deliveryCount === 1) throw new Error('transient failure');
        });

        await transport.send(queue, { attempt: 'x' });

        await eventually(() => expect(deliveries.map((m) => m.deliveryCount)).toEqual([1, 2]));
        expect(deliveries[1]?.id).toBe(deliveries[0]?.id);
        expect(deliveries[1]?.body).toEqual({ attempt: 'x' });
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that throws a retryable OrchestratorError, when a message is handled, then it is redelivered',
      async () => {
        const deliveries: number[] = [];
        await transport.consume(queue, async (message) => {
          deliveries.push(message.deliveryCount);
          if (message.deliveryCount === 1) {
            throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'store is down', { retryable: true });
          }
        });

        await transport.send(queue, { retry: true });

        await eventually(() => expect(deliveries).toEqual([1, 2]));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that always throws, when the message has been delivered maxDeliveryCount times, then it is dead-lettered',
      async () => {
        const deliveries: number[] = [];
        let id: string | undefined;
        await transport.consume(queue, async (message) => {
          id = message.id;
          deliveries.push(message.deliveryCount);
          throw new Error('always fails');
        });

        await transport.send(queue, { poison: true });

        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 1 }),
        );
        expect(deliveries).toEqual(Array.from({ length: maxDeliveryCount }, (_, n) => n + 1));
        expect(await transport.peekDeadLetters(queue)).toEqual([
          {
            id,
            body: { poison: true },
            deliveryCount: maxDeliveryCount,
            reason: 'MaxDeliveryCountExceeded',
            description: 'always fails',
          },
        ]);
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that throws a non-retryable OrchestratorError, when a message is handled, then it is dead-lettered at once with the code as reason',
      async () => {
        const deliveries: number[] = [];
        await transport.consume(queue, async (message) => {
          deliveries.push(message.deliveryCount);
          throw new OrchestratorError('VALIDATION_FAILED', 'rows must be positive');
        });

        await transport.send(queue, { rows: -1 }, { messageId: 'bad-job' });

        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 1 }),
        );
        expect(deliveries).toEqual([1]);
        expect(await transport.peekDeadLetters(queue)).toEqual([
          {
            id: 'bad-job',
            body: { rows: -1 },
            deliveryCount: 1,
            reason: 'VALIDATION_FAILED',
            description: 'rows must be positive',
          },
        ]);
      },
      testTimeoutInMs,
    );

    it(
      'given dead-lettered messages, when they are peeked, then they come oldest first, up to maxCount, and stay',
      async () => {
        await transport.consume<{ n: number }>(queue, async (message) => {
          throw new OrchestratorError('VALIDATION_FAILED', `bad ${message.body.n}`);
        });

        for (const n of [1, 2, 3]) {
          await transport.send(queue, { n });
          await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(n));
        }

        const firstTwo = await transport.peekDeadLetters<{ n: number }>(queue, { maxCount: 2 });
        expect(firstTwo.map((m) => m.body.n)).toEqual([1, 2]);
        const all = await transport.peekDeadLetters<{ n: number }>(queue);
        expect(all.map((m) => m.description)).toEqual(['bad 1', 'bad 2', 'bad 3']);
        expect((await transport.getQueueDepth(queue)).deadLetter).toBe(3);
      },
      testTimeoutInMs,
    );

    it(
      'given concurrency N, when more than N messages wait, then N handlers run at once and no more',
      async () => {
        const concurrency = 3;
        const total = 9;
        const release = latch();
        let running = 0;
        let maxRunning = 0;
        let started = 0;
        let finished = 0;
        await transport.sendBatch(
          queue,
          Array.from({ length: total }, (_, n) => ({ body: { n } })),
        );

        await transport.consume(
          queue,
          async () => {
            started++;
            running++;
            maxRunning = Math.max(maxRunning, running);
            await release.opened;
            running--;
            finished++;
          },
          { concurrency },
        );

        await eventually(() => expect(running).toBe(concurrency));
        // Give a transport that would exceed the limit the chance to do so.
        await sleep(300);
        expect(started).toBe(concurrency);
        release.open();
        await eventually(() => expect(finished).toBe(total));
        expect(maxRunning).toBe(concurrency);
      },
      testTimeoutInMs,
    );

    it(
      'given two consumers of one queue, when messages arrive, then they compete and no message is handled twice',
      async () => {
        const total = 40;
        const handled: string[] = [];
        const handler = async (message: ReceivedMessage<{ n: number }>): Promise<void> => {
          await sleep(5);
          handled.push(String(message.body.n));
        };
        await transport.consume(queue, handler, { concurrency: 2 });
        await transport.consume(queue, handler, { concurrency: 2 });

        await transport.sendBatch(
          queue,
          Array.from({ length: total }, (_, n) => ({ body: { n } })),
        );

        await eventually(() => expect(handled).toHaveLength(total));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
        expect(new Set(handled).size).toBe(total);
        expect(handled).toHaveLength(total);
      },
      testTimeoutInMs,
    );

    it(
      'given a handler in flight, when its subscription is closed, then close waits for it and no new message is delivered',
      async () => {
        const release = latch();
        let started = 0;
        let finished = 0;
        const subscription = await transport.consume(queue, async () => {
          started++;
          await release.opened;
          finished++;
        });
        await transport.send(queue, { first: true });
        await eventually(() => expect(started).toBe(1));

        let closed = false;
        const closing = subscription.close().then(() => {
          closed = true;
        });
        await sleep(100);
        expect(closed).toBe(false);
        release.open();
        await closing;

        expect(finished).toBe(1);
        await transport.send(queue, { second: true });
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toMatchObject({ active: 1 }));
        await sleep(300);
        expect(started).toBe(1);
      },
      testTimeoutInMs,
    );

    it(
      'given a handler that outlives its lock without renewal, when the lock expires, then the message is redelivered, the signal aborted and the late outcome ignored',
      async () => {
        const deliveries: ReceivedMessage<{ slow: boolean }>[] = [];
        let firstAborted = false;
        await transport.consume<{ slow: boolean }>(
          queue,
          async (message, signal) => {
            deliveries.push(message);
            if (message.deliveryCount > 1) return;
            await retryUntil(() => expect(signal.aborted).toBe(true), 4 * lockDurationInMs + waitTimeoutInMs);
            firstAborted = true;
            // Void: if the transport honoured this, the message would be dead-lettered.
            throw new OrchestratorError('VALIDATION_FAILED', 'outcome after the lock was lost');
          },
          { concurrency: 2, maxAutoLockRenewalDurationInMs: 0 },
        );

        await transport.send(queue, { slow: true });

        await eventually(
          () => expect(deliveries.map((m) => m.deliveryCount)).toEqual([1, 2]),
          4 * lockDurationInMs + waitTimeoutInMs,
        );
        expect(deliveries[1]?.id).toBe(deliveries[0]?.id);
        await eventually(() => expect(firstAborted).toBe(true));
        await eventually(async () => expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth));
        await sleep(100);
        expect(await transport.getQueueDepth(queue)).toEqual(emptyDepth);
      },
      8 * lockDurationInMs + testTimeoutInMs,
    );

    it(
      'given queued, locked, scheduled and dead-lettered messages, when the depth is read, then each is counted where it belongs',
      async () => {
        const release = latch();
        await transport.send(queue, { kind: 'hold' });
        await transport.send(queue, { kind: 'poison' });
        await transport.send(queue, { kind: 'later' }, { delayInMs: 10 * 60_000 });
        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 2, scheduled: 1, deadLetter: 0 }),
        );

        let holding = false;
        await transport.consume<{ kind: string }>(
          queue,
          async (message) => {
            if (message.body.kind === 'poison') throw new OrchestratorError('VALIDATION_FAILED', 'poison');
            holding = true;
            await release.opened;
          },
          { concurrency: 2 },
        );

        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 1, deadLetter: 1 }),
        );
        expect(holding).toBe(true);
        release.open();
        await eventually(async () =>
          expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 1, deadLetter: 1 }),
        );
      },
      testTimeoutInMs,
    );
  });
}

interface Latch {
  readonly opened: Promise<void>;
  readonly open: () => void;
}

function createLatch(): Latch {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `assertion` until it stops throwing, or rethrows its last error after `timeoutInMs`. */
async function retryUntil<T>(assertion: () => T | Promise<T>, timeoutInMs: number): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await sleep(20);
    }
  }
}
