import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export const isListening = (port: number, host = '127.0.0.1'): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    const settle = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.once('connect', () => settle(true));
    socket.once('timeout', () => settle(false));
    socket.once('error', () => settle(false));
  });

export interface Sandbox {
  name: string;
  /** The URL that reaches it (amqp://…/vhost, postgres://…/database). */
  url: string;
  /** Deletes it and everything in it. */
  close(): Promise<void>;
}

export interface RabbitMqSandboxOptions {
  /** @default 'http://guest:guest@127.0.0.1:15672' */
  managementUrl?: string;
  /** @default 'amqp://guest:guest@127.0.0.1:5672' */
  amqpUrl?: string;
  /** @default 'orch-test' */
  prefix?: string;
}

/**
 * A RabbitMQ virtual host of its own (created through the management API, guest granted all
 * rights), so a test or benchmark never sees another run's queues and leaves none behind.
 */
export async function createRabbitMqSandbox(options: RabbitMqSandboxOptions = {}): Promise<Sandbox> {
  const management = new URL(options.managementUrl ?? 'http://guest:guest@127.0.0.1:15672');
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(management.username)}:${decodeURIComponent(management.password)}`).toString('base64')}`;
  const base = `${management.protocol}//${management.host}/api`;
  const name = `${options.prefix ?? 'orch-test'}-${randomBytes(4).toString('hex')}`;
  const call = async (method: string, resource: string, body?: unknown): Promise<void> => {
    const res = await fetch(`${base}${resource}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    if (!res.ok && res.status !== 404) throw new Error(`${method} ${resource}: ${res.status} ${await res.text()}`);
  };
  const vhost = encodeURIComponent(name);
  await call('PUT', `/vhosts/${vhost}`, {});
  await call('PUT', `/permissions/${vhost}/${encodeURIComponent(management.username || 'guest')}`, {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  const amqp = new URL(options.amqpUrl ?? 'amqp://guest:guest@127.0.0.1:5672');
  amqp.pathname = `/${vhost}`;
  return { name, url: amqp.toString(), close: () => call('DELETE', `/vhosts/${vhost}`) };
}

/**
 * A PostgreSQL database of its own on the server at `adminUrl` (which must name an existing
 * database, e.g. `postgres`), dropped with everything in it on close.
 */
export async function createPgSandbox(
  adminUrl = 'postgres://postgres@127.0.0.1:5432/postgres',
  prefix = 'orch_test',
): Promise<Sandbox> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), close: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
