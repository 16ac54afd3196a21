import type { AccessToken, TokenCredential } from '@azure/identity';
import { OrchestratorError, type JobStore } from '@orch/core';
import pg from 'pg';
import type { Logger } from 'pino';
import { createPostgresJobStore } from './job-store.ts';
import type { SqlClient } from './sql-client.ts';

/** The Entra ID scope of Azure Database for PostgreSQL; its tokens are the password. */
export const ENTRA_POSTGRES_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';

/** A cached token is replaced once it is this close to expiry (tokens live ~1 h; a connection needs it only to log in). */
const TOKEN_REFRESH_MARGIN_IN_MS = 5 * 60_000;

export interface PgSqlClientOptions {
  /** e.g. `postgres://user@host:5432/db?sslmode=require`; its parts win over the fields below. */
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  /** TLS with certificate verification. @default true with `azureCredential`, else as the connection string says */
  ssl?: boolean;
  /** Pool size. @default 10 */
  maxConnections?: number;
  /** How long opening a connection may take before it fails (retryably). @default 15_000 */
  connectionTimeoutInMs?: number;
  /**
   * Entra ID authentication (Azure Database for PostgreSQL): the password of each new connection
   * is an access token for `ENTRA_POSTGRES_SCOPE`, cached and fetched again when within 5 minutes of
   * expiry. `user` (or the connection string's) must be the Entra principal's database role name.
   */
  azureCredential?: TokenCredential;
  logger?: Logger;
}

export type PgServerJobStoreOptions = PgSqlClientOptions;

const DEFAULT_MAX_CONNECTIONS = 10;

/**
 * A `JobStore` on a PostgreSQL server (15+): migrates the schema (the same migrations as the
 * embedded store, serialised across processes by an advisory lock), then serves from a `pg` Pool.
 * Failures follow `createPostgresJobStore`: an unreachable server, a lost connection or a failed
 * token request are a retryable `DEPENDENCY_UNAVAILABLE`.
 */
export async function createPgServerJobStore(options: PgServerJobStoreOptions = {}): Promise<JobStore> {
  const client = createPgSqlClient(options);
  try {
    // Leave connections for the other statements while group commits run in parallel.
    const maxBatchesInFlight = Math.max(1, Math.floor((options.maxConnections ?? DEFAULT_MAX_CONNECTIONS) / 2));
    return await createPostgresJobStore(client, {
      ...(options.logger && { logger: options.logger }),
      maxBatchesInFlight,
    });
  } catch (e) {
    await client.close();
    throw e;
  }
}

/**
 * A `SqlClient` over a `pg` Pool, which it owns (`close` ends it). Errors pass through as `pg`
 * raises them, for `createPostgresJobStore` to translate; only use after `close` throws a retryable
 * `DEPENDENCY_UNAVAILABLE` itself, as PGlite's closed database does.
 */
export function createPgSqlClient(options: PgSqlClientOptions = {}): SqlClient {
  const { azureCredential, logger } = options;
  const ssl = options.ssl ?? (azureCredential === undefined ? undefined : true);
  const pool = new pg.Pool({
    ...(options.connectionString !== undefined && { connectionString: options.connectionString }),
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: options.port }),
    ...(options.user !== undefined && { user: options.user }),
    ...(options.database !== undefined && { database: options.database }),
    ...(ssl !== undefined && { ssl }),
    ...(azureCredential !== undefined && { password: entraTokenProvider(azureCredential, logger) }),
    max: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    connectionTimeoutMillis: options.connectionTimeoutInMs ?? 15_000,
  });
  // An idle connection that fails (server restart, failover) is dropped and replaced on next use;
  // without a listener the pool's 'error' event would crash the process.
  pool.on('error', (e) => logger?.warn({ err: e }, 'idle database connection failed; it will be replaced'));

  let closed = false;
  const assertOpen = (): void => {
    if (closed)
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'job database client is closed', { retryable: true });
  };

  return {
    query: (sql, params, queryOptions) => {
      assertOpen();
      return run(pool, sql, params, queryOptions?.prepare);
    },
    async transaction(fn) {
      assertOpen();
      const connection = await pool.connect();
      const tx = transactionClient(connection);
      let broken: Error | undefined;
      try {
        await connection.query('BEGIN');
        const result = await fn(tx.client);
        await connection.query('COMMIT');
        return result;
      } catch (e) {
        try {
          await connection.query('ROLLBACK');
        } catch (rollbackError) {
          // The connection is unusable: destroy it instead of returning it to the pool.
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
        throw e;
      } finally {
        tx.end();
        connection.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** The client `fn` gets inside a transaction; it refuses work once the transaction is over. */
function transactionClient(connection: pg.PoolClient): { client: SqlClient; end: () => void } {
  let ended = false;
  const client: SqlClient = {
    query: (sql, params, queryOptions) => {
      if (ended) return Promise.reject(new Error('the transaction is over: this client can no longer be used'));
      return run(connection, sql, params, queryOptions?.prepare);
    },
    // Like PGlite: no nested transactions, the work joins the enclosing one.
    transaction: (fn) => fn(client),
    close: () => Promise.reject(new Error('a transaction client cannot be closed')),
  };
  return { client, end: () => (ended = true) };
}

async function run<T>(
  target: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly unknown[] | undefined,
  name: string | undefined,
): Promise<{ rows: T[] }> {
  // Without parameters `pg` uses the simple protocol, which runs a script of several statements and
  // returns one result per statement.
  const values = params === undefined ? undefined : [...params];
  const result = (await (name !== undefined && values !== undefined
    ? target.query({ name, text: sql, values })
    : target.query(sql, values))) as unknown as pg.QueryResult | pg.QueryResult[];
  const last = Array.isArray(result) ? result.at(-1) : result;
  return { rows: (last?.rows ?? []) as T[] };
}

/**
 * `pg` calls this for the password of each new connection (when the server asks for one). One
 * token request at a time; while a cached token is still valid, a failed refresh falls back to it.
 */
function entraTokenProvider(credential: TokenCredential, logger: Logger | undefined): () => Promise<string> {
  let cached: AccessToken | undefined;
  let pending: Promise<AccessToken> | undefined;

  const fetchToken = async (): Promise<AccessToken> => {
    try {
      const token = await credential.getToken(ENTRA_POSTGRES_SCOPE);
      if (token === null) throw new Error('the credential returned no token');
      cached = token;
      logger?.debug({ expiresOn: new Date(token.expiresOnTimestamp).toISOString() }, 'Entra ID token for PostgreSQL');
      return token;
    } finally {
      pending = undefined;
    }
  };

  return async () => {
    const now = Date.now();
    if (cached !== undefined && !needsRefresh(cached, now)) return cached.token;
    try {
      return (await (pending ??= fetchToken())).token;
    } catch (e) {
      if (cached !== undefined && cached.expiresOnTimestamp > Date.now()) {
        logger?.warn({ err: e }, 'Entra ID token refresh failed; using the cached token until it expires');
        return cached.token;
      }
      throw new OrchestratorError(
        'DEPENDENCY_UNAVAILABLE',
        `could not get an Entra ID token for the job database: ${e instanceof Error ? e.message : String(e)}`,
        { retryable: true, cause: e },
      );
    }
  };
}

function needsRefresh(token: AccessToken, now: number): boolean {
  return (
    token.expiresOnTimestamp - now <= TOKEN_REFRESH_MARGIN_IN_MS ||
    (token.refreshAfterTimestamp !== undefined && now >= token.refreshAfterTimestamp)
  );
}
