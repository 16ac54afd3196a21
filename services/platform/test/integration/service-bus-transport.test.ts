/* eslint-disable @typescript-eslint/require-await -- handlers implement an async port; many have nothing to await */
import { randomUUID } from 'node:crypto';
import { DefaultAzureCredential } from '@azure/identity';
import { ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { OrchestratorError, isOrchestratorError } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import { createServiceBusTransport } from '../../src/service-bus/index.ts';
import type { ServiceBusTransportOptions } from '../../src/service-bus/index.ts';
import { startServiceBusTestServer } from '../../src/test-servers/service-bus-server.ts';
import type { RunningServiceBusTestServer } from '../../src/test-servers/service-bus-server.ts';
import { describeQueueTransportContract, freePort } from '../../src/testing/index.ts';

// The lock must stay above 1 s: the SDK renews a lock with less than 1 s left at once, in a loop.
const lockDurationInMs = 1_500;
const maxDeliveryCount = 3;

// One in-process server for the whole file; every case uses queues of its own.
let server: RunningServiceBusTestServer;
beforeAll(async () => {
  server = await startServiceBusTestServer({ lockDurationInMs, maxDeliveryCount });
});
afterAll(async () => {
  await server?.close();
});

describeQueueTransportContract(
  'servicebus (test server)',
  async () => createServiceBusTransport({ connectionString: server.connectionString, depthCacheTtlInMs: 0 }),
  { lockDurationInMs, maxDeliveryCount, waitTimeoutInMs: 20_000 },
);

/**
 * A real namespace (connection string or Entra ID) or Microsoft's emulator, when configured:
 * `SERVICEBUS_TEST_CONNECTION_STRING` or `SERVICEBUS_TEST_NAMESPACE` (DefaultAzureCredential, with
 * Azure Service Bus Data Owner), optionally `SERVICEBUS_TEST_ADMINISTRATION_ENDPOINT`. Every case
 * creates its own queue (`createQueues`) and deletes it afterwards.
 */
const external = externalTarget(process.env);
if (external) {
  const externalLockDurationInMs = 5_000; // the smallest lock Service Bus allows
  describeQueueTransportContract(
    `servicebus (${external.description})`,
    async () =>
      deletingQueuesOnClose(
        createServiceBusTransport({
          ...external.options,
          depthCacheTtlInMs: 0,
          createQueues: { lockDurationInMs: externalLockDurationInMs, maxDeliveryCount },
        }),
        external.administration,
      ),
    { lockDurationInMs: externalLockDurationInMs, maxDeliveryCount, waitTimeoutInMs: 60_000 },
  );
} else {
  describe.skip('QueueTransport contract: servicebus (real namespace or emulator): set SERVICEBUS_TEST_CONNECTION_STRING or SERVICEBUS_TEST_NAMESPACE to run', () => {
    it('runs the contract suite against the configured namespace', () => undefined);
  });
}

/** Polls until `assertion` passes; bounded, so a wrong transport fails instead of hanging. */
const eventually = async (assertion: () => unknown, timeoutInMs = 20_000): Promise<void> => {
  await vi.waitFor(assertion, { timeout: timeoutInMs, interval: 20 });
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('createServiceBusTransport', () => {
  let transport: QueueTransport;
  let queue: string;
  const extra: QueueTransport[] = [];
  const create = (options: Partial<ServiceBusTransportOptions> = {}): QueueTransport => {
    const created = createServiceBusTransport({
      connectionString: server.connectionString,
      depthCacheTtlInMs: 0,
      ...options,
    });
    extra.push(created);
    return created;
  };

  beforeEach(() => {
    transport = create();
    queue = `test-${randomUUID()}`;
  });

  afterEach(async () => {
    await Promise.all(extra.splice(0).map((t) => t.close()));
  });

  it('describes itself as the durable servicebus transport', () => {
    expect(transport.kind).toBe('servicebus');
    expect(transport.durable).toBe(true);
  });

  it('given a closed transport, when sending or consuming, then it rejects with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    await transport.close();

    await expect(transport.send(queue, { late: true })).rejects.toSatisfy(
      (e: unknown) => isOrchestratorError(e) && e.code === 'DEPENDENCY_UNAVAILABLE' && e.retryable,
    );
    await expect(transport.sendBatch(queue, [{ body: 1 }])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(transport.consume(queue, async () => {})).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(transport.close()).resolves.toBeUndefined();
  });

  it('given an aborted signal, when sending, then it rejects with its reason and enqueues nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));

    await expect(transport.send(queue, 1, { abortSignal: controller.signal })).rejects.toThrow('caller gave up');
    await expect(transport.sendBatch(queue, [{ body: 1 }], { abortSignal: controller.signal })).rejects.toThrow(
      'caller gave up',
    );
    expect(server.depthOf(queue)).toMatchObject({ active: 0, scheduled: 0 });
  });

  it('given a body JSON cannot encode, when sending, then it throws a TypeError and sends nothing of the batch', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;

    await expect(transport.send(queue, cyclic)).rejects.toThrow(TypeError);
    await expect(transport.sendBatch<unknown>(queue, [{ body: 1 }, { body: cyclic }])).rejects.toThrow(TypeError);
    expect(server.depthOf(queue).active).toBe(0);
  });

  it('given 500 messages, when sent with sendBatch, then they travel in batched transfers and all arrive once', async () => {
    const before = server.counters();
    const total = 500;

    await transport.sendBatch(
      queue,
      Array.from({ length: total }, (_, n) => ({ body: { n, padding: 'x'.repeat(1_000) } })),
    );

    const after = server.counters();
    expect(after.messagesAccepted - before.messagesAccepted).toBe(total);
    expect(after.singleTransfers - before.singleTransfers).toBe(0);
    // 500 KB of bodies cannot fit one 256 KB transfer, and need far fewer than 500.
    expect(after.batchedTransfers - before.batchedTransfers).toBeGreaterThan(1);
    expect(after.batchedTransfers - before.batchedTransfers).toBeLessThan(10);
    const seen = new Set<number>();
    let deliveries = 0;
    await transport.consume<{ n: number }>(
      queue,
      async (message) => {
        deliveries++;
        seen.add(message.body.n);
      },
      { concurrency: 16 },
    );
    await eventually(() => expect(seen.size).toBe(total));
    await eventually(async () =>
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
    );
    expect(deliveries).toBe(total);
  });

  it('given scheduled messages in a batch, when they fall due, then each group arrives after its delay', async () => {
    const sentAt = Date.now();
    const arrivals: { body: string; at: number }[] = [];
    await transport.sendBatch(queue, [
      { body: 'now' },
      { body: 'later-a', delayInMs: 1_000 },
      { body: 'later-b', delayInMs: 1_000 },
    ]);
    expect(await transport.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 2, deadLetter: 0 });

    await transport.consume<string>(queue, async (message) => {
      arrivals.push({ body: message.body, at: Date.now() });
    });

    await eventually(() => expect(arrivals.map((a) => a.body).sort()).toEqual(['later-a', 'later-b', 'now']));
    for (const arrival of arrivals.filter((a) => a.body !== 'now')) {
      expect(arrival.at - sentAt).toBeGreaterThanOrEqual(1_000 - 250);
    }
  });

  it('given a message larger than the maximum message size, when sent, then it fails with PAYLOAD_TOO_LARGE', async () => {
    const huge = { blob: 'x'.repeat(300 * 1024) };

    await expect(transport.send(queue, huge)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', retryable: false });
    await expect(transport.sendBatch<unknown>(queue, [{ body: 1 }, { body: huge }])).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
  });

  it('given the default auto-renewal, when a handler runs for several lock durations, then the lock is renewed and the message is not redelivered', async () => {
    const deliveries: number[] = [];
    let abortedDuringHandler = false;
    const renewalsBefore = server.counters().lockRenewals;
    await transport.consume(queue, async (message, signal) => {
      deliveries.push(message.deliveryCount);
      await sleep(3 * lockDurationInMs);
      abortedDuringHandler = signal.aborted;
    });

    await transport.send(queue, { long: true });

    await eventually(async () =>
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
    );
    await eventually(() => expect(deliveries).toEqual([1]));
    expect(abortedDuringHandler).toBe(false);
    expect(server.counters().lockRenewals).toBeGreaterThan(renewalsBefore);
    await sleep(lockDurationInMs);
    expect(deliveries).toEqual([1]);
  });

  it('given a renewal window shorter than the handler, when the window is over, then the signal aborts with LOCK_LOST and the message is redelivered', async () => {
    const deliveries: number[] = [];
    let reason: unknown;
    await transport.consume(
      queue,
      async (message, signal) => {
        deliveries.push(message.deliveryCount);
        if (message.deliveryCount > 1) return;
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        reason = signal.reason;
      },
      { concurrency: 2, maxAutoLockRenewalDurationInMs: lockDurationInMs },
    );

    await transport.send(queue, { stuck: true });

    await eventually(() => expect(deliveries).toEqual([1, 2]));
    await eventually(() => expect(reason).toMatchObject({ code: 'LOCK_LOST', retryable: true }));
    await eventually(async () =>
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 0 }),
    );
  });

  it('given a handler that outlives its lock at maxDeliveryCount, when the lock expires, then the broker dead-letters it with its own description', async () => {
    await transport.consume(
      queue,
      async (_message, signal) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
      { concurrency: maxDeliveryCount, maxAutoLockRenewalDurationInMs: 0 },
    );

    await transport.send(queue, 'hung', { messageId: 'hung-1' });

    await eventually(async () =>
      expect(await transport.getQueueDepth(queue)).toEqual({ active: 0, scheduled: 0, deadLetter: 1 }),
    );
    expect(await transport.peekDeadLetters(queue)).toEqual([
      {
        id: 'hung-1',
        body: 'hung',
        deliveryCount: maxDeliveryCount,
        reason: 'MaxDeliveryCountExceeded',
        description: `Message could not be consumed after ${maxDeliveryCount} delivery attempts.`,
      },
    ]);
  });

  it('given a message whose body is not JSON, when it is consumed, then it is dead-lettered as INVALID_JSON without calling the handler', async () => {
    const foreign = new ServiceBusClient(server.connectionString);
    try {
      await foreign.createSender(queue).sendMessages({ body: Buffer.from('not json {'), messageId: 'foreign' });
      let calls = 0;
      await transport.consume(queue, async () => {
        calls++;
      });

      await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(1));
      expect(calls).toBe(0);
      expect(await transport.peekDeadLetters(queue)).toMatchObject([
        { id: 'foreign', body: 'not json {', reason: 'INVALID_JSON', deliveryCount: 1 },
      ]);
    } finally {
      await foreign.close();
    }
  });

  it('given 12 dead letters, when peeking with maxCount 10, then the 10 oldest come in order and all stay', async () => {
    await transport.consume<number>(queue, async (message) => {
      throw new OrchestratorError('VALIDATION_FAILED', `bad ${message.body}`);
    });
    await transport.sendBatch(
      queue,
      Array.from({ length: 12 }, (_, n) => ({ body: n })),
    );
    await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(12));

    const peeked = await transport.peekDeadLetters<number>(queue, { maxCount: 10 });

    expect(peeked.map((m) => m.body)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peeked[0]).toEqual({
      id: expect.any(String) as unknown,
      body: 0,
      deliveryCount: 1,
      reason: 'VALIDATION_FAILED',
      description: 'bad 0',
    });
    expect(await transport.peekDeadLetters(queue, { maxCount: 0 })).toEqual([]);
    expect(await transport.peekDeadLetters(queue)).toHaveLength(12);
  });

  it('given a depth cache TTL, when the depth is read repeatedly and concurrently, then one management request serves them', async () => {
    const cached = create({ depthCacheTtlInMs: 60_000 });
    await cached.send(queue, 'x');
    const before = server.counters().managementHttpRequests;

    const reads = await Promise.all([
      cached.getQueueDepth(queue),
      cached.getQueueDepth(queue),
      cached.getQueueDepth(queue),
    ]);
    const again = await cached.getQueueDepth(queue);

    expect(reads).toEqual([
      { active: 1, scheduled: 0, deadLetter: 0 },
      { active: 1, scheduled: 0, deadLetter: 0 },
      { active: 1, scheduled: 0, deadLetter: 0 },
    ]);
    expect(again).toEqual({ active: 1, scheduled: 0, deadLetter: 0 });
    expect(server.counters().managementHttpRequests - before).toBe(1);
  });

  it('given a missing queue, when its depth is read, then it fails with a non-retryable DEPENDENCY_UNAVAILABLE', async () => {
    await expect(transport.getQueueDepth(`missing-${randomUUID()}`)).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: false,
    });
  });

  it('given nothing listens at the endpoint, when sending or reading depth, then it fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    const port = await freePort();
    const unreachable = create({
      connectionString: server.connectionString.replace(/:\d+;/, `:${port};`),
      retryOptions: { maxRetries: 0, retryDelayInMs: 10, timeoutInMs: 2_000 },
    });

    await expect(unreachable.send(queue, 'x')).rejects.toMatchObject({
      name: 'OrchestratorError',
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: true,
    });
    await expect(unreachable.getQueueDepth(queue)).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: true,
    });
  });

  it('given neither or both of connectionString and fullyQualifiedNamespace, when created, then it throws CONFIG_INVALID', () => {
    expect(() => createServiceBusTransport({})).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() =>
      createServiceBusTransport({
        connectionString: server.connectionString,
        fullyQualifiedNamespace: 'x.servicebus.windows.net',
      }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() =>
      createServiceBusTransport({ connectionString: server.connectionString, depthCacheTtlInMs: -1 }),
    ).toThrow(RangeError);
  });

  it('given invalid consume options, when consuming, then it rejects with a RangeError', async () => {
    await expect(transport.consume(queue, async () => {}, { concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(transport.consume(queue, async () => {}, { maxAutoLockRenewalDurationInMs: -1 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('createServiceBusTransport with createQueues', () => {
  let strict: RunningServiceBusTestServer;
  beforeAll(async () => {
    strict = await startServiceBusTestServer({
      autoCreateQueues: false,
      lockDurationInMs: 60_000,
      maxDeliveryCount: 10,
    });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it('given a namespace without the queue, when the transport first uses it, then it creates the queue with the given settings', async () => {
    const queue = `test-${randomUUID()}`;
    const transport = createServiceBusTransport({
      connectionString: strict.connectionString,
      depthCacheTtlInMs: 0,
      createQueues: { lockDurationInMs: 2_000, maxDeliveryCount: 2 },
    });
    try {
      const attempts: number[] = [];
      await transport.consume(queue, async (message) => {
        attempts.push(message.deliveryCount);
        throw new Error('nope');
      });
      await transport.send(queue, 'x');

      expect(strict.queueSettings(queue)).toEqual({ lockDurationInMs: 2_000, maxDeliveryCount: 2 });
      await eventually(async () => expect((await transport.getQueueDepth(queue)).deadLetter).toBe(1));
      expect(attempts).toEqual([1, 2]);
      expect(await transport.peekDeadLetters(queue)).toMatchObject([
        { reason: 'MaxDeliveryCountExceeded', description: 'nope', deliveryCount: 2 },
      ]);
    } finally {
      await transport.close();
    }
  });

  it('given a namespace without the queue and no createQueues, when sending, then it fails with a non-retryable DEPENDENCY_UNAVAILABLE', async () => {
    const transport = createServiceBusTransport({
      connectionString: strict.connectionString,
      retryOptions: { maxRetries: 0, timeoutInMs: 5_000 },
    });
    try {
      await expect(transport.send(`missing-${randomUUID()}`, 'x')).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
        retryable: false,
      });
    } finally {
      await transport.close();
    }
  });
});

interface ExternalTarget {
  description: string;
  options: ServiceBusTransportOptions;
  administration: ServiceBusAdministrationClient;
}

function externalTarget(env: NodeJS.ProcessEnv): ExternalTarget | undefined {
  const administrationEndpoint = env.SERVICEBUS_TEST_ADMINISTRATION_ENDPOINT || undefined;
  const connectionString = env.SERVICEBUS_TEST_CONNECTION_STRING || undefined;
  const namespace = env.SERVICEBUS_TEST_NAMESPACE || undefined;
  if (connectionString) {
    const emulator = /UseDevelopmentEmulator=true/i.test(connectionString);
    const administration = new ServiceBusAdministrationClient(connectionString);
    // Like the transport: the emulator serves management over plain HTTP (on 5300 by default).
    const endpoint =
      administrationEndpoint ??
      (emulator
        ? `http://${new URL(/Endpoint=([^;]+)/i.exec(connectionString)?.[1] ?? 'sb://localhost').hostname}:5300`
        : undefined);
    if (endpoint) {
      const base = new URL(endpoint);
      administration.pipeline.addPolicy({
        name: 'testAdministrationEndpoint',
        sendRequest(request, next) {
          const url = new URL(request.url);
          url.protocol = base.protocol;
          url.host = base.host;
          request.url = url.toString();
          request.allowInsecureConnection = base.protocol === 'http:';
          return next(request);
        },
      });
    }
    return {
      description: emulator ? 'emulator' : 'namespace by connection string',
      options: { connectionString, ...(administrationEndpoint && { administrationEndpoint }) },
      administration,
    };
  }
  if (namespace) {
    const credential = new DefaultAzureCredential();
    return {
      description: `namespace ${namespace}`,
      options: { fullyQualifiedNamespace: namespace, credential },
      administration: new ServiceBusAdministrationClient(namespace, credential),
    };
  }
  return undefined;
}

/** Deletes the queue a contract case used once its transport closes (best effort). */
function deletingQueuesOnClose(
  transport: QueueTransport,
  administration: ServiceBusAdministrationClient,
): QueueTransport {
  const used = new Set<string>();
  return {
    kind: transport.kind,
    durable: transport.durable,
    send(queue, body, options) {
      used.add(queue);
      return transport.send(queue, body, options);
    },
    sendBatch(queue, messages, options) {
      used.add(queue);
      return transport.sendBatch(queue, messages, options);
    },
    consume(queue, handler, options) {
      used.add(queue);
      return transport.consume(queue, handler, options);
    },
    getQueueDepth(queue) {
      used.add(queue);
      return transport.getQueueDepth(queue);
    },
    peekDeadLetters(queue, options) {
      used.add(queue);
      return transport.peekDeadLetters(queue, options);
    },
    async close() {
      await transport.close();
      await Promise.allSettled([...used].map((queue) => administration.deleteQueue(queue)));
    },
  };
}
