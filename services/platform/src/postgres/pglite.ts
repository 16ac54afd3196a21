import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite, type PGliteInterface, type Transaction } from '@electric-sql/pglite';
import type { JobStore } from '@orch/core';
import type { Logger } from 'pino';
import { createPostgresJobStore } from './job-store.ts';
import type { SqlClient } from './sql-client.ts';

export interface PgliteJobStoreOptions {
  /** Folder holding the database, created if missing. @default undefined: in memory, lost on close */
  dataDir?: string;
  /**
   * PostgreSQL's `shared_buffers`: its page cache inside the WASM heap, resident for the process's
   * life. Pages it does not hold are read from the files (the OS caches those). @default '16MB'
   */
  sharedBuffers?: string;
  logger?: Logger;
}

const INIT_SCRIPT = fileURLToPath(new URL('./pglite-init.ts', import.meta.url));

/**
 * A `JobStore` on embedded PostgreSQL (PGlite, in-process WASM). One process at a time may open a
 * `dataDir`. Startup takes seconds (initdb on first use), so create one per process.
 */
export async function createPgliteJobStore(options: PgliteJobStoreOptions = {}): Promise<JobStore> {
  const { logger } = options;
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  const startedAt = performance.now();
  if (dataDir !== undefined && !existsSync(join(dataDir, 'PG_VERSION'))) {
    await mkdir(dataDir, { recursive: true });
    logger?.info({ dataDir }, 'creating the embedded database (first start)');
    await promisify(execFile)(process.execPath, [INIT_SCRIPT, dataDir], { timeout: 120_000 });
  }
  const db = await PGlite.create({
    ...(dataDir !== undefined && { dataDir }),
    postgresqlconf: [`shared_buffers = '${options.sharedBuffers ?? '16MB'}'`],
  });
  try {
    const store = await createPostgresJobStore(createPgliteSqlClient(db), { logger });
    logger?.info(
      { dataDir: dataDir ?? 'memory', startupInMs: Math.round(performance.now() - startedAt) },
      'embedded PostgreSQL ready',
    );
    return store;
  } catch (e) {
    await db.close();
    throw e;
  }
}

/** A `SqlClient` over a PGlite instance; its `close` closes the database. */
export function createPgliteSqlClient(db: PGliteInterface): SqlClient {
  const client: SqlClient = {
    query: (sql, params) => run(db, sql, params),
    transaction: (fn) => db.transaction((tx) => fn(transactionClient(tx))),
    close: () => db.close(),
  };
  return client;
}

function transactionClient(tx: Transaction): SqlClient {
  const client: SqlClient = {
    query: (sql, params) => run(tx, sql, params),
    // PGlite has no nested transactions: the work joins the enclosing one.
    transaction: (fn) => fn(client),
    close: () => Promise.reject(new Error('a transaction client cannot be closed')),
  };
  return client;
}

async function run<T>(
  target: PGliteInterface | Transaction,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<{ rows: T[] }> {
  if (params === undefined) {
    // Like `pg` without parameters: the simple protocol, which accepts a script of several statements.
    const results = await target.exec(sql);
    return { rows: (results.at(-1)?.rows ?? []) as T[] };
  }
  return target.query<T>(sql, [...params]);
}
