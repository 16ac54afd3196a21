/* eslint-disable @typescript-eslint/require-await -- handlers implement an async port; many have nothing to await */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { connect as connectAmqp } from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isOrchestratorError } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import { createRabbitMqTransport } from '@orch/platform/rabbitmq';
import type { RabbitMqTransportOptions } from '@orch/platform/rabbitmq';
import { createRabbitMqSandbox, describeQueueTransportContract, freePort, isListening } from '@orch/platform/testing';
import type { Sandbox } from '@orch/platform/testing';

// The local broker (scripts/ensure-services.sh), or RABBITMQ_URL / RABBITMQ_MANAGEMENT_URL. The file
// works in a virtual host of its own, created through the management API and deleted at the end.
const AMQP_URL = new URL(process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const MANAGEMENT_URL = new URL(
  process.env.RABBITMQ_MANAGEMENT_URL ??
    `http://${AMQP_URL.username || 'guest'}:${AMQP_URL.password || 'guest'}@${AMQP_URL.hostname}:15672`,
);
const AMQP_PORT = Number(AMQP_URL.port || 5672);

const reachable = await isListening(AMQP_PORT, AMQP_URL.hostname);
if (!reachable && process.env.CI === 'true') {
  throw new Error(`RabbitMQ is not reachable at ${AMQP_URL.host} (CI=true, so this fails instead of skipping)`);
}
if (!reachable) {
  console.warn(`RabbitMQ is not reachable at ${AMQP_URL.host}: skipping (run scripts/ensure-services.sh rabbitmq)`);
}

const lockDurationInMs = 500;
const maxDeliveryCount = 3;
const waitTimeoutInMs = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `assertion` passes; bounded, so a broken transport fails instead of hanging. */
async function eventually<T>(assertion: () => T | Promise<T>, timeoutInMs = waitTimeoutInMs): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await sleep(25);
    }
  }
}

const managementAuth = `Basic ${Buffer.from(
  `${decodeURIComponent(MANAGEMENT_URL.username)}:${decodeURIComponent(MANAGEMENT_URL.password)}`,
).toString('base64')}`;

async function management(method: string, path: string): Promise<unknown> {
  const response = await fetch(`${MANAGEMENT_URL.protocol}//${MANAGEMENT_URL.host}${path}`, {
    method,
    headers: { authorization: managementAuth, 'x-reason': 'rabbitmq-transport test' },
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : await response.json();
}

/** Closes, through the management API, every connection of `vhost` that has `connectionName`. */
async function forceCloseConnections(vhost: string, connectionName: string): Promise<number> {
  // The management API lists a new connection after its next statistics tick (a few seconds).
  const names = await eventually(async () => {
    const connections = (await management('GET', `/api/vhosts/${encodeURIComponent(vhost)}/connections`)) as {
      name: string;
      client_properties?: { connection_name?: string };
    }[];
    const matching = connections.filter((c) => c.client_properties?.connection_name === connectionName);
    expect(matching.length).toBeGreaterThan(0);
    return matching.map((c) => c.name);
  });
  for (const name of names) await management('DELETE', `/api/connections/${encodeURIComponent(name)}`);
  return names.length;
}

const proxies: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

/** A pass-through to the management API that records the path of every request it forwards. */
async function countingManagementProxy(): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    fetch(`${MANAGEMENT_URL.protocol}//${MANAGEMENT_URL.host}${req.url ?? ''}`, {
      headers: { authorization: req.headers.authorization ?? '' },
    })
      .then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      })
      .catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxies.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  return { url: `http://${MANAGEMENT_URL.username}:${MANAGEMENT_URL.password}@127.0.0.1:${port}`, paths };
}

/** A pino logger whose records are kept, to see what the transport reported. */
function capturingLogger(): { logger: RabbitMqTransportOptions['logger']; records: { level: number; msg: string }[] } {
  const records: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) records.push(JSON.parse(line) as { level: number; msg: string });
      }
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records };
}

describe.skipIf(!reachable)('RabbitMQ transport', () => {
  let sandbox: Sandbox;
  const open: QueueTransport[] = [];
  const create = (options: Partial<RabbitMqTransportOptions> = {}): QueueTransport => {
    const transport = createRabbitMqTransport({
      url: sandbox.url,
      managementUrl: MANAGEMENT_URL.toString(),
      lockDurationInMs,
      maxDeliveryCount,
      ...options,
    });
    open.push(transport);
    return transport;
  };
  const newQueue = (): string => `test-${randomUUID()}`;

  beforeAll(async () => {
    try {
      sandbox = await createRabbitMqSandbox({ managementUrl: MANAGEMENT_URL.toString(), amqpUrl: AMQP_URL.toString() });
    } catch (error) {
      throw new Error(
        `RabbitMQ listens at ${AMQP_URL.host} but its management API at ${MANAGEMENT_URL.host} failed (enable the plugin: scripts/ensure-services.sh rabbitmq)`,
        { cause: error },
      );
    }
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((transport) => transport.close()));
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  describeQueueTransportContract('rabbitmq', async () => create(), {
    lockDurationInMs,
    maxDeliveryCount,
    waitTimeoutInMs,
  });

  describe('createRabbitMqTransport', () => {
    it('describes itself as the durable rabbitmq transport', () => {
      const transport = create();
      expect(transport.kind).toBe('rabbitmq');
      expect(transport.durable).toBe(true);
    });

    it('given a batch of 2,000 messages, when consumed with concurrency 16, then each is handled exactly once', async () => {
      const transport = create();
      const queue = newQueue();
      const ids = Array.from({ length: 2_000 }, (_, n) => `m-${n}`);
      const handled = new Map<string, number>();
      await transport.consume<{ n: number }>(
        queue,
        async (message) => {
          handled.set(message.id, (handled.get(message.id) ?? 0) + 1);
        },
        { concurrency: 16 },
      );

      await transport.sendBatch(
        queue,
        ids.map((messageId, n) => ({ body: { n }, messageId })),
      );

      await eventually(() => expect(handled.size).toBe(ids.length));
      await eventually(async () =>
        expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
      );
      expect([...handled.keys()].sort()).toEqual([...ids].sort());
      expect([...handled.values()].every((count) => count === 1)).toBe(true);
    }, 60_000);

    it('given a batch of 500 messages, when sent, then they leave in a handful of socket writes, not one each', async () => {
      const transport = create();
      const queue = newQueue();
      await transport.send(queue, { warmUp: true }); // connects, opens the publisher and declares the queue
      // Write system calls of this process (Linux): each costs a loopback TCP round of its own.
      const writes = async (): Promise<number> =>
        Number(/^syscw: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
      const before = await writes();

      await transport.sendBatch(
        queue,
        Array.from({ length: 500 }, (_, n) => ({ body: { n } })),
      );

      expect((await writes()) - before).toBeLessThan(50);
      expect((await transport.getQueueDepth(queue)).active).toBe(501);
    });

    it('given a consumer handling a stream, when the connection is forced closed, then it reconnects and no message is lost', async () => {
      const { logger, records } = capturingLogger();
      const connectionName = `drill-${randomUUID()}`;
      // A slow first reconnection, so the sends issued right after the loss happen during the outage.
      const transport = create({ logger, connectionName, lockDurationInMs: 30_000, reconnectInitialDelayInMs: 1_500 });
      const queue = newQueue();
      const handled = new Map<string, number>();
      let holdStarted = false;
      let holdAbortReason: unknown;
      let holdRedelivery: number | undefined;
      await transport.consume<{ n?: number; hold?: boolean }>(
        queue,
        async (message, signal) => {
          if (message.body.hold) {
            if (message.deliveryCount === 1) {
              holdStarted = true;
              await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
              holdAbortReason = signal.reason;
              throw new Error('void: the connection is gone');
            }
            holdRedelivery = message.deliveryCount;
          } else {
            await sleep(1);
          }
          handled.set(message.id, (handled.get(message.id) ?? 0) + 1);
        },
        { concurrency: 4 },
      );
      await transport.send(queue, { hold: true }, { messageId: 'hold' });
      await eventually(() => expect(holdStarted).toBe(true));
      const sent = ['hold'];
      // A steady stream of sends that goes on through the outage and stops once it is over.
      let streaming = true;
      const stream = (async () => {
        for (let n = 0; streaming; n++) {
          await transport.send(queue, { n }, { messageId: `m-${n}` });
          sent.push(`m-${n}`);
          await sleep(2);
        }
      })();
      await eventually(() => expect(handled.size).toBeGreaterThan(10));

      expect(await forceCloseConnections(sandbox.name, connectionName)).toBeGreaterThan(0);
      await eventually(() =>
        expect(records.some((r) => r.msg === 'RabbitMQ connection lost; reconnecting')).toBe(true),
      );
      const restored = (r: { msg: string }): boolean => r.msg === 'RabbitMQ connection restored';
      const outageStart = records.length;
      const sentBeforeOutage = sent.length;
      expect(records.some(restored)).toBe(false);
      await transport.sendBatch(
        queue,
        Array.from({ length: 50 }, (_, n) => ({ body: { n: -1 - n }, messageId: `outage-${n}` })),
      );
      sent.push(...Array.from({ length: 50 }, (_, n) => `outage-${n}`));
      await sleep(100);
      streaming = false;
      await stream;
      expect(sent.length).toBeGreaterThan(sentBeforeOutage + 50);

      await eventually(() => expect([...handled.keys()].sort()).toEqual([...sent].sort()));
      await eventually(async () =>
        expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
      );
      // The outage sends were issued before the connection came back, and completed after it did.
      expect(records.slice(outageStart).filter(restored)).toHaveLength(1);
      expect(holdAbortReason).toMatchObject({ code: 'LOCK_LOST', retryable: true });
      // RabbitMQ 3.x counts a message returned by a dropped connection as a delivery.
      expect(holdRedelivery).toBe(2);
      expect(records.filter((r) => r.msg === 'RabbitMQ connection lost; reconnecting')[0]?.level).toBe(40);
      expect(records.find(restored)?.level).toBe(30);
    }, 90_000);

    it('given a delayed message and an immediate one sent after it, when consumed, then the immediate one comes first and the delayed one counts as scheduled until due', async () => {
      const transport = create();
      const queue = newQueue();
      await transport.send(queue, 'delayed', { delayInMs: 5_000 });
      await transport.send(queue, 'immediate');
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 1, deadLetter: 0 });

      const order: string[] = [];
      await transport.consume<string>(queue, async (message) => {
        order.push(message.body);
      });

      await eventually(() => expect(order).toEqual(['immediate', 'delayed']));
      await eventually(async () =>
        expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
      );
    }, 40_000);

    it('given a message held by another instance, when the depth is read, then it counts as active (from the management API)', async () => {
      const reader = create();
      const holder = create();
      const queue = newQueue();
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let holding = false;
      await reader.send(queue, { held: true });
      await holder.consume(queue, async () => {
        holding = true;
        await released;
      });
      try {
        await eventually(() => expect(holding).toBe(true));
        // The management API refreshes its statistics every few seconds.
        await eventually(async () => expect((await reader.getQueueDepth(queue)).active).toBe(1), 40_000);
      } finally {
        release();
      }
      await eventually(async () => expect((await reader.getQueueDepth(queue)).active).toBe(0));
    }, 60_000);

    it('given depth reads within depthCacheTtlInMs, when repeated or concurrent, then the management API is asked once and the broker counts stay exact', async () => {
      const proxy = await countingManagementProxy();
      const transport = create({ managementUrl: proxy.url, depthCacheTtlInMs: 600_000 });
      const queue = newQueue();
      await transport.send(queue, 1);
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 0, deadLetter: 0 });
      await Promise.all(Array.from({ length: 5 }, () => transport.getQueueDepth(queue)));
      await transport.send(queue, 2);
      await transport.send(queue, 3, { delayInMs: 60_000 });
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 2, scheduled: 1, deadLetter: 0 });
      expect(proxy.paths).toHaveLength(1); // the delay queues of `queue`, listed once
    });

    it('given depthCacheTtlInMs 0, when depth is read concurrently, then the reads share one management request, and a later read asks again', async () => {
      const proxy = await countingManagementProxy();
      const transport = create({ managementUrl: proxy.url, depthCacheTtlInMs: 0 });
      const queue = newQueue();
      await transport.send(queue, 1);
      const depths = await Promise.all(Array.from({ length: 5 }, () => transport.getQueueDepth(queue)));
      expect(depths).toEqual(Array(5).fill({ active: 1, scheduled: 0, deadLetter: 0 }));
      expect(proxy.paths).toHaveLength(1);
      await transport.getQueueDepth(queue);
      expect(proxy.paths).toHaveLength(2);
    });

    it('given a message the broker dead-letters past its delivery limit, when peeked, then it reads as MaxDeliveryCountExceeded', async () => {
      const transport = create({ maxDeliveryCount: 2 });
      const queue = newQueue();
      await transport.send(queue, { poison: true }, { messageId: 'poison' });
      // A raw consumer that keeps returning the message, as crashing consumers would.
      const connection = await connectAmqp(sandbox.url);
      try {
        const channel = await connection.createChannel();
        await channel.consume(queue, (message) => {
          if (message) channel.nack(message, false, true);
        });
        await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(1));
      } finally {
        await connection.close();
      }

      expect(await transport.peekDeadLetters(queue)).toEqual([
        {
          id: 'poison',
          body: { poison: true },
          deliveryCount: 2,
          reason: 'MaxDeliveryCountExceeded',
          description: expect.any(String) as string,
        },
      ]);
    });

    it('given a handler that outlives its lock on the last delivery, when the lock expires, then the message is dead-lettered', async () => {
      const transport = create({ lockDurationInMs: 200, maxDeliveryCount: 1 });
      const queue = newQueue();
      let aborted: unknown;
      await transport.consume(
        queue,
        async (_message, signal) => {
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          aborted = signal.reason;
        },
        { maxAutoLockRenewalDurationInMs: 0 },
      );
      await transport.send(queue, 'hung');

      await eventually(async () =>
        expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 1 }),
      );
      expect(aborted).toMatchObject({ code: 'LOCK_LOST', retryable: true });
      expect((await transport.peekDeadLetters(queue))[0]).toMatchObject({
        reason: 'MaxDeliveryCountExceeded',
        deliveryCount: 1,
      });
    });

    it('given the default auto-renewal, when a handler runs longer than the lock, then the message is not redelivered', async () => {
      const transport = create({ lockDurationInMs: 100 });
      const queue = newQueue();
      const deliveries: number[] = [];
      let abortedDuringHandler: boolean | undefined;
      await transport.consume(queue, async (message, signal) => {
        deliveries.push(message.deliveryCount);
        await sleep(600);
        abortedDuringHandler = signal.aborted;
      });
      await transport.send(queue, 'long');

      await eventually(() => expect(abortedDuringHandler).toBe(false));
      await eventually(async () =>
        expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
      );
      expect(deliveries).toEqual([1]);
    });

    it('given a queue declared with another maxDeliveryCount, when used, then it fails with CONFIG_INVALID', async () => {
      const queue = newQueue();
      await create({ maxDeliveryCount: 3 }).send(queue, 'first');
      const other = create({ maxDeliveryCount: 5 });

      await expect(other.send(queue, 'second')).rejects.toMatchObject({ code: 'CONFIG_INVALID', retryable: false });
      await expect(other.consume(queue, async () => {})).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    });

    it('given a closed transport, when used, then it rejects with a retryable DEPENDENCY_UNAVAILABLE', async () => {
      const transport = create();
      const queue = newQueue();
      await transport.send(queue, 'before');
      await transport.close();

      await expect(transport.send(queue, 'late')).rejects.toSatisfy(
        (e: unknown) => isOrchestratorError(e) && e.code === 'DEPENDENCY_UNAVAILABLE' && e.retryable,
      );
      await expect(transport.sendBatch(queue, [{ body: 1 }])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
      await expect(transport.consume(queue, async () => {})).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
      await expect(transport.getQueueDepth(queue)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    });

    it('given an aborted signal, when sending, then it rejects with its reason and enqueues nothing', async () => {
      const transport = create();
      const queue = newQueue();
      const controller = new AbortController();
      controller.abort(new Error('caller gave up'));

      await expect(transport.send(queue, 1, { abortSignal: controller.signal })).rejects.toThrow('caller gave up');
      await expect(transport.sendBatch(queue, [{ body: 1 }], { abortSignal: controller.signal })).rejects.toThrow(
        'caller gave up',
      );
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 });
    });

    it('given no broker at the URL, when sending, then it rejects with a retryable DEPENDENCY_UNAVAILABLE after sendTimeoutInMs', async () => {
      const port = await freePort();
      const transport = create({ url: `amqp://guest:guest@127.0.0.1:${port}`, sendTimeoutInMs: 300 });

      await expect(transport.send(newQueue(), 'nowhere')).rejects.toMatchObject({
        name: 'OrchestratorError',
        code: 'DEPENDENCY_UNAVAILABLE',
        retryable: true,
      });
    });

    it('given invalid options or arguments, when creating or using the transport, then it throws a RangeError', async () => {
      expect(() => createRabbitMqTransport({ url: sandbox.url, lockDurationInMs: 0 })).toThrow(RangeError);
      expect(() => createRabbitMqTransport({ url: sandbox.url, maxDeliveryCount: 1.5 })).toThrow(RangeError);
      expect(() => createRabbitMqTransport({ url: 'http://127.0.0.1:5672' })).toThrow(RangeError);
      expect(() => createRabbitMqTransport({ url: sandbox.url, managementUrl: 'not a url' })).toThrow(RangeError);
      expect(() => createRabbitMqTransport({ url: sandbox.url, depthCacheTtlInMs: -1 })).toThrow(RangeError);
      expect(() =>
        createRabbitMqTransport({ url: sandbox.url, reconnectInitialDelayInMs: 1_000, reconnectMaxDelayInMs: 10 }),
      ).toThrow(RangeError);
      const transport = create();
      await expect(transport.consume(newQueue(), async () => {}, { concurrency: 0 })).rejects.toThrow(RangeError);
      await expect(transport.send('', 'x')).rejects.toThrow(RangeError);
      await expect(transport.send('jobs.dlq', 'x')).rejects.toThrow(RangeError);
      await expect(transport.send(newQueue(), 'x', { delayInMs: 365 * 24 * 3_600_000 })).rejects.toThrow(RangeError);
    });
  });
});
