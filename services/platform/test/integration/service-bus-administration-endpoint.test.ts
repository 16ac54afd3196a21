import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { QueueTransport } from '@orch/core';
import { createServiceBusTransport } from '../../src/service-bus/index.ts';
import type { ServiceBusTransportOptions } from '../../src/service-bus/index.ts';
import { startServiceBusTestServer } from '../../src/test-servers/service-bus-server.ts';
import type { RunningServiceBusTestServer } from '../../src/test-servers/service-bus-server.ts';

/**
 * Where management (depth) requests go when AMQP and management listen on different ports, as with
 * Microsoft's emulator (AMQP 5672, management 5300), while the local test server serves both on one.
 */
const MICROSOFT_EMULATOR_MANAGEMENT_PORT = 5300;

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

const transportFor = (options: ServiceBusTransportOptions): QueueTransport => {
  const transport = createServiceBusTransport({ depthCacheTtlInMs: 0, retryOptions: { maxRetries: 0 }, ...options });
  closing.push(() => transport.close());
  return transport;
};

async function testServer(): Promise<RunningServiceBusTestServer> {
  const server = await startServiceBusTestServer();
  closing.push(() => server.close());
  return server;
}

/** An HTTP listener standing in for the emulator's management port: records paths, answers 503, keeps no connection. */
async function managementListener(port: number): Promise<string[]> {
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(503, { connection: 'close' }).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`port ${port} must be free for this test`, { cause: e })));
    server.listen(port, '127.0.0.1', resolve);
  });
  closing.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections(); // no kept-alive connection may reach the next test's listener
        server.close(() => resolve());
      }),
  );
  return paths;
}

describe('Service Bus administration endpoint', () => {
  it('given administrationEndpoint, when depth is read, then it comes from there while messages go to the connection string', async () => {
    const amqp = await testServer();
    const management = await testServer();
    const queue = `admin-${randomUUID()}`;
    await transportFor({ connectionString: management.connectionString }).send(queue, 'counted over there');

    const split = transportFor({
      connectionString: amqp.connectionString,
      administrationEndpoint: management.administrationEndpoint,
    });
    await split.send(queue, 'one');
    await split.send(queue, 'two');

    expect(amqp.depthOf(queue).active).toBe(2);
    expect(await split.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 0, deadLetter: 0 });
    expect(amqp.counters().managementHttpRequests).toBe(0);
  });

  it('given an empty administrationEndpoint, then the connection string’s port serves management too', async () => {
    const server = await testServer();
    const queue = `admin-${randomUUID()}`;
    const transport = transportFor({ connectionString: server.connectionString, administrationEndpoint: '' });
    await transport.send(queue, 'one');
    expect(await transport.getQueueDepth(queue)).toEqual({ active: 1, scheduled: 0, deadLetter: 0 });
    expect(server.counters().managementHttpRequests).toBeGreaterThan(0);
  });

  it.each([
    ['names no port', 'sb://127.0.0.1'],
    ['names AMQP’s port 5672', 'sb://127.0.0.1:5672'],
  ])(
    'given an emulator connection string that %s, when depth is read, then management goes to port 5300',
    async (_, endpoint) => {
      const paths = await managementListener(MICROSOFT_EMULATOR_MANAGEMENT_PORT);
      const queue = `admin-${randomUUID()}`;
      const transport = transportFor({
        connectionString: `Endpoint=${endpoint};SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true`,
      });
      await expect(transport.getQueueDepth(queue)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
      expect(paths.length).toBeGreaterThan(0);
      expect(paths.every((p) => p.startsWith(`/${queue}`))).toBe(true);
    },
  );
});
