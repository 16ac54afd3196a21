/* eslint-disable @typescript-eslint/require-await -- handlers implement an async port; some have nothing to await */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { consumeLanes } from '@orch/core';
import type { QueueTransport, ReceivedMessage, Subscription } from '@orch/core';
import { createMemoryTransport } from '@orch/platform/memory';

interface LaneMessage {
  lane: 'high' | 'standard';
  n: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `assertion` passes; bounded, so a broken dispatcher fails instead of hanging. */
async function eventually(assertion: () => unknown, timeoutInMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await sleep(10);
    }
  }
}

const backlog = (lane: LaneMessage['lane'], count: number): { body: LaneMessage }[] =>
  Array.from({ length: count }, (_, n) => ({ body: { lane, n } }));

describe('consumeLanes', () => {
  let transport: QueueTransport;
  let high: string;
  let standard: string;
  let subscription: Subscription | undefined;

  beforeEach(() => {
    transport = createMemoryTransport();
    const pool = `pool-${randomUUID()}`;
    high = `${pool}-high`;
    standard = pool;
    subscription = undefined;
  });

  afterEach(async () => {
    await subscription?.close();
    await transport.close();
  });

  it('given a backlog on both lanes, when consumed with concurrency 2, then high messages start before all but at most 2 standard ones', async () => {
    const concurrency = 2;
    await transport.sendBatch(standard, backlog('standard', 40));
    await transport.sendBatch(high, backlog('high', 10));
    const starts: LaneMessage['lane'][] = [];
    let running = 0;
    let maxRunning = 0;

    subscription = await consumeLanes<LaneMessage>(
      transport,
      [high, standard],
      async (message) => {
        starts.push(message.body.lane);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(3);
        running--;
      },
      { concurrency },
    );

    await eventually(() => expect(starts).toHaveLength(50));
    const lastHighStart = starts.lastIndexOf('high');
    const standardBeforeLastHigh = starts.slice(0, lastHighStart).filter((lane) => lane === 'standard').length;
    expect(standardBeforeLastHigh).toBeLessThanOrEqual(concurrency);
    expect(maxRunning).toBeLessThanOrEqual(concurrency);
  });

  it('given a long standard backlog being drained, when an urgent message arrives, then it starts before the remaining backlog', async () => {
    const concurrency = 2;
    await transport.sendBatch(standard, backlog('standard', 30));
    const starts: LaneMessage['lane'][] = [];

    subscription = await consumeLanes<LaneMessage>(
      transport,
      [high, standard],
      async (message) => {
        starts.push(message.body.lane);
        await sleep(3);
      },
      { concurrency },
    );
    await eventually(() => expect(starts.length).toBeGreaterThanOrEqual(5));
    const startsBeforeArrival = starts.length;
    await transport.send(high, { lane: 'high', n: 0 });

    await eventually(() => expect(starts).toHaveLength(31));
    const standardStartsWhileWaiting = starts.indexOf('high') - startsBeforeArrival;
    expect(standardStartsWhileWaiting).toBeGreaterThanOrEqual(0);
    expect(standardStartsWhileWaiting).toBeLessThanOrEqual(concurrency);
    expect(starts.indexOf('high')).toBeLessThan(starts.length - 1);
  });

  it('given headroom 1 and every slot busy with a long standard job, when an urgent message arrives, then it runs at once beside them', async () => {
    await transport.sendBatch(standard, backlog('standard', 2));
    let releaseStandard!: () => void;
    const standardMayFinish = new Promise<void>((resolve) => {
      releaseStandard = resolve;
    });
    const started: LaneMessage[] = [];
    subscription = await consumeLanes<LaneMessage>(
      transport,
      [high, standard],
      async (message) => {
        started.push(message.body);
        if (message.body.lane === 'standard') await standardMayFinish;
      },
      { concurrency: 1, headroom: 1 },
    );
    await eventually(() => expect(started).toHaveLength(1));

    await transport.send(high, { lane: 'high', n: 0 });

    await eventually(() => expect(started.map((m) => m.lane)).toEqual(['standard', 'high']));
    await sleep(50);
    expect(started).toHaveLength(2); // the second standard message still waits for the one slot
    releaseStandard();
    await eventually(() => expect(started).toHaveLength(3));
  });

  it('given handlers running and messages waiting for a slot, when closed, then waiters are abandoned back to their queues and running handlers finish', async () => {
    await transport.sendBatch(high, backlog('high', 3));
    await transport.sendBatch(standard, backlog('standard', 2));
    let releaseRunning!: () => void;
    const runningMayFinish = new Promise<void>((resolve) => {
      releaseRunning = resolve;
    });
    const started: LaneMessage[] = [];
    let finished = 0;
    const lanes = await consumeLanes<LaneMessage>(
      transport,
      [high, standard],
      async (message) => {
        started.push(message.body);
        await runningMayFinish;
        finished++;
      },
      { concurrency: 1 },
    );
    await eventually(() => expect(started).toHaveLength(1));
    // One high message runs; another high one and a standard one hold a lock while waiting for the slot.
    await eventually(async () => expect((await transport.getQueueDepth(standard)).active).toBe(2));

    let closed = false;
    const closing = lanes.close().then(() => {
      closed = true;
    });
    await sleep(50);
    expect(closed).toBe(false);
    releaseRunning();
    await closing;

    expect(started).toEqual([{ lane: 'high', n: 0 }]);
    expect(finished).toBe(1);
    expect(await transport.getQueueDepth(high)).toEqual({ active: 2, scheduled: 0, deadLetter: 0 });
    expect(await transport.getQueueDepth(standard)).toEqual({ active: 2, scheduled: 0, deadLetter: 0 });

    const redelivered: ReceivedMessage<LaneMessage>[] = [];
    subscription = await transport.consume<LaneMessage>(high, async (message) => {
      redelivered.push(message);
    });
    await eventually(() => expect(redelivered).toHaveLength(2));
    expect(redelivered.map((m) => m.body.n).sort()).toEqual([1, 2]);
  });

  it('given a handler that fails, when its message is redelivered, then its slot was released and every message completes', async () => {
    await transport.sendBatch(high, backlog('high', 3));
    await transport.sendBatch(standard, backlog('standard', 3));
    const completed: string[] = [];

    subscription = await consumeLanes<LaneMessage>(
      transport,
      [high, standard],
      async (message) => {
        if (message.deliveryCount === 1) throw new Error('first attempt fails');
        completed.push(`${message.body.lane}-${message.body.n}`);
      },
      { concurrency: 1 },
    );

    await eventually(() => expect(completed).toHaveLength(6));
    expect([...completed].sort()).toEqual(['high-0', 'high-1', 'high-2', 'standard-0', 'standard-1', 'standard-2']);
    expect(await transport.getQueueDepth(high)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 });
    expect(await transport.getQueueDepth(standard)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 });
  });

  it('given messages waiting for a slot longer than the lock duration, when they start, then none was redelivered', async () => {
    const shortLock = createMemoryTransport({ lockDurationInMs: 40 });
    try {
      await shortLock.sendBatch(high, backlog('high', 8));
      const deliveryCounts: number[] = [];
      const lanes = await consumeLanes<LaneMessage>(
        shortLock,
        [high, standard],
        async (message, signal) => {
          deliveryCounts.push(message.deliveryCount);
          await sleep(60);
          if (signal.aborted) throw new Error('lock lost');
        },
        { concurrency: 1 },
      );

      await eventually(async () => expect(await shortLock.getQueueDepth(high)).toMatchObject({ active: 0 }));
      await lanes.close();
      expect(deliveryCounts).toEqual(Array.from({ length: 8 }, () => 1));
    } finally {
      await shortLock.close();
    }
  });
});
