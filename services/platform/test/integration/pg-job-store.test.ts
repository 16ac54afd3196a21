import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { JobStore } from '@orch/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRA_POSTGRES_SCOPE, createPgServerJobStore, createPgSqlClient } from '../../src/postgres/index.ts';
import { describeJobStoreContract, freePort, makeJob } from '../../src/testing/index.ts';

// The local server (scripts/ensure-services.sh): trust auth, user postgres, database "test". Each
// run works in databases of its own, created here and dropped at the end.
const SERVER = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const ADMIN_DATABASE = 'test';
/** Every migration shipped, as postgrator records them: `NNN.do.<name>.sql` → version `N`. */
const MIGRATION_VERSIONS = readdirSync(new URL('../../src/postgres/migrations/', import.meta.url))
  .map((file) => /^(\d+)\.do\./.exec(file)?.[1])
  .filter((v): v is string => v !== undefined)
  .map((v) => ({ version: String(Number(v)) }))
  .sort((a, b) => Number(a.version) - Number(b.version));

const reachable = await canConnect();
if (!reachable && process.env.CI === 'true') {
  throw new Error(
    `PostgreSQL is not reachable at ${SERVER.host}:${SERVER.port} (CI=true, so this fails instead of skipping)`,
  );
}

describe.skipIf(!reachable)('PostgreSQL server job store', () => {
  const databases: string[] = [];
  let database: string;
  const urlOf = (name: string): string => `postgres://${SERVER.user}@${SERVER.host}:${SERVER.port}/${name}`;
  const freshDatabase = async (): Promise<string> => {
    const name = `orch_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    databases.push(name);
    await admin(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return name;
  };

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    for (const name of databases) await admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  });

  describeJobStoreContract('PostgreSQL server', () =>
    createPgServerJobStore({ connectionString: urlOf(database), maxConnections: 4 }),
  );

  describe('createPgServerJobStore', () => {
    it('given a fresh database, when five stores start at once, then every migration succeeds and the schema is applied once', async () => {
      const name = await freshDatabase();

      const stores = await Promise.all(
        Array.from({ length: 5 }, () => createPgServerJobStore({ connectionString: urlOf(name), maxConnections: 2 })),
      );

      const job = makeJob();
      await stores[0]!.createJobs([job]);
      expect(await stores[4]!.getJob(job.id)).toStrictEqual(job);
      const { rows } = await query(name, 'SELECT version FROM orch_schema_version WHERE version > 0 ORDER BY version');
      expect(MIGRATION_VERSIONS.length).toBeGreaterThanOrEqual(4);
      expect(rows).toStrictEqual(MIGRATION_VERSIONS);
      await Promise.all(stores.map((s) => s.close()));
    });

    it('given a closed store, when it is used, then it fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
      const store = await createPgServerJobStore({ connectionString: urlOf(database) });
      await store.close();
      await store.close(); // idempotent

      await expect(store.ping()).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
      await expect(store.getJob('x')).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
    });

    it('given nothing listens at the address, when the store is created, then it fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
      const port = await freePort();

      await expect(
        createPgServerJobStore({ host: '127.0.0.1', port, user: SERVER.user, database }),
      ).rejects.toMatchObject({ name: 'OrchestratorError', code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
    });
  });

  describe('createPgSqlClient', () => {
    it('given a transaction that throws, when it ends, then none of its writes are kept and the error is rethrown', async () => {
      const client = createPgSqlClient({ connectionString: urlOf(database) });
      const table = `t_${randomUUID().replaceAll('-', '')}`;
      await client.query(`CREATE TABLE ${table} (n integer)`);
      try {
        const failure = new Error('boom');
        await expect(
          client.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${table} VALUES ($1)`, [1]);
            throw failure;
          }),
        ).rejects.toBe(failure);
        await client.transaction((tx) => tx.query(`INSERT INTO ${table} VALUES ($1)`, [2]));

        expect((await client.query(`SELECT n FROM ${table}`, [])).rows).toStrictEqual([{ n: 2 }]);
      } finally {
        await client.query(`DROP TABLE ${table}`);
        await client.close();
      }
    });

    it('given a script of several statements without parameters, when it runs, then the rows of the last one come back', async () => {
      const client = createPgSqlClient({ connectionString: urlOf(database) });
      try {
        expect((await client.query('SELECT 1 AS a; SELECT 2 AS b')).rows).toStrictEqual([{ b: 2 }]);
      } finally {
        await client.close();
      }
    });
  });

  // The server trusts loopback, so it never asks for a password; a proxy in front of it asks for one
  // (cleartext, as Azure Database for PostgreSQL does over TLS), records it, and lets the rest through.
  describe('Entra ID authentication', () => {
    let proxy: PasswordProxy;
    beforeAll(async () => {
      proxy = await startPasswordProxy(SERVER);
    });
    afterAll(async () => {
      await proxy?.close();
    });
    const viaProxy = () => ({ host: '127.0.0.1', port: proxy.port, user: SERVER.user, database, ssl: false });

    it('given a token valid for an hour, when three connections open at once, then one token is fetched and each connection logs in with it', async () => {
      const fake = fakeCredential(60 * 60_000);
      const client = createPgSqlClient({ ...viaProxy(), azureCredential: fake.credential, maxConnections: 3 });
      const before = proxy.passwords.length;
      try {
        await holdConnections(client, 3);
      } finally {
        await client.close();
      }

      expect(fake.scopes).toStrictEqual([[ENTRA_POSTGRES_SCOPE]]);
      expect(proxy.passwords.slice(before)).toStrictEqual(['token-1', 'token-1', 'token-1']);
    });

    it('given tokens expiring within 5 minutes, when another connection opens, then a new token is fetched and used', async () => {
      const fake = fakeCredential(4 * 60_000);
      const client = createPgSqlClient({ ...viaProxy(), azureCredential: fake.credential, maxConnections: 2 });
      const before = proxy.passwords.length;
      try {
        await client.transaction(async (first) => {
          await first.query('SELECT 1', []);
          // The first connection is busy, so this one is new.
          await client.transaction((second) => second.query('SELECT 1', []));
        });
      } finally {
        await client.close();
      }

      expect(fake.scopes).toHaveLength(2);
      expect(proxy.passwords.slice(before)).toStrictEqual(['token-1', 'token-2']);
    });

    it('given an Entra credential, when the job store starts, then it migrates and serves through token-authenticated connections', async () => {
      const fake = fakeCredential(60 * 60_000);
      const store: JobStore = await createPgServerJobStore({ ...viaProxy(), azureCredential: fake.credential });
      try {
        const job = makeJob();
        await store.createJobs([job]);
        expect(await store.getJob(job.id)).toStrictEqual(job);
      } finally {
        await store.close();
      }
      expect(fake.scopes.length).toBe(1);
    });

    it('given a credential that cannot get a token, when the store starts, then it fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
      const credential: TokenCredential = { getToken: () => Promise.reject(new Error('no identity here')) };

      await expect(createPgServerJobStore({ ...viaProxy(), azureCredential: credential })).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
        retryable: true,
        message: expect.stringContaining('no identity here') as unknown,
      });
    });
  });
});

if (!reachable) {
  console.warn(
    `pg-job-store: PostgreSQL is not reachable at ${SERVER.host}:${SERVER.port}; skipping (CI=true fails instead)`,
  );
  describe('PostgreSQL server job store', () => {
    it.skip(`skipped: PostgreSQL is not reachable at ${SERVER.host}:${SERVER.port} (run bash scripts/ensure-services.sh)`, () => {});
  });
}

async function canConnect(): Promise<boolean> {
  const client = new pg.Client({ ...SERVER, database: ADMIN_DATABASE, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function query(database: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ ...SERVER, database });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

const admin = (sql: string): Promise<pg.QueryResult> => query(ADMIN_DATABASE, sql);

/** Opens `count` connections at once: each transaction waits until all of them are inside. */
async function holdConnections(client: ReturnType<typeof createPgSqlClient>, count: number): Promise<void> {
  const allInside = Promise.withResolvers<void>();
  let inside = 0;
  await Promise.all(
    Array.from({ length: count }, () =>
      client.transaction(async (tx) => {
        await tx.query('SELECT 1', []);
        if (++inside === count) allInside.resolve();
        await allInside.promise;
      }),
    ),
  );
}

/** Hands out `token-1`, `token-2`, … each valid for `lifetimeInMs`, and records the scopes asked for. */
function fakeCredential(lifetimeInMs: number): { credential: TokenCredential; scopes: string[][] } {
  const scopes: string[][] = [];
  const credential: TokenCredential = {
    getToken(requested): Promise<AccessToken> {
      scopes.push([requested].flat());
      return Promise.resolve({ token: `token-${scopes.length}`, expiresOnTimestamp: Date.now() + lifetimeInMs });
    },
  };
  return { credential, scopes };
}

interface PasswordProxy {
  port: number;
  /** Every password a client sent, in order. */
  passwords: string[];
  close(): Promise<void>;
}

/** SSLRequest's protocol code, answered with "N" (no TLS). */
const SSL_REQUEST = 80_877_103;

/**
 * A TCP proxy that speaks the start of the PostgreSQL protocol: it answers the client's startup
 * message with AuthenticationCleartextPassword, records the PasswordMessage, then connects to
 * `target`, replays the startup message there (trust auth lets it in) and pipes both ways.
 */
async function startPasswordProxy(target: { host: string; port: number }): Promise<PasswordProxy> {
  const passwords: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const server = createServer((client) => {
    track(client);
    client.on('error', () => client.destroy());
    let pending = Buffer.alloc(0);
    let startup: Buffer | undefined;

    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      while (startup === undefined) {
        if (pending.length < 8 || pending.length < pending.readInt32BE(0)) return;
        const message = pending.subarray(0, pending.readInt32BE(0));
        pending = pending.subarray(message.length);
        if (message.readInt32BE(4) === SSL_REQUEST) {
          client.write('N');
          continue;
        }
        startup = message;
        client.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // 'R', length 8, cleartext password
      }
      // PasswordMessage: 'p', int32 length (counting itself), the password, NUL.
      if (pending.length < 5 || pending.length < 1 + pending.readInt32BE(1)) return;
      const length = pending.readInt32BE(1);
      passwords.push(pending.subarray(5, length).toString('utf8'));
      const rest = pending.subarray(1 + length);

      client.off('data', onData);
      const upstream = connect(target);
      track(upstream);
      upstream.on('error', () => client.destroy());
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
      upstream.write(startup);
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
    };
    client.on('data', onData);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    passwords,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
