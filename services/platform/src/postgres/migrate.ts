import { fileURLToPath } from 'node:url';
import Postgrator from 'postgrator';
import type { Logger } from 'pino';
import type { SqlClient } from './sql-client.ts';

/** postgrator's bookkeeping table (the default `schemaversion` says nothing about whose it is). */
export const SCHEMA_TABLE = 'orch_schema_version';

/** An arbitrary constant, the key of the advisory lock that serialises concurrent migrations. */
const MIGRATION_LOCK_KEY = 7_311_842_019;

const MIGRATION_PATTERN = `${fileURLToPath(new URL('./migrations/', import.meta.url))}*.sql`;

export interface MigrateOptions {
  logger?: Logger;
}

/**
 * Brings the schema to the latest version, in one transaction that first takes a transaction-level
 * advisory lock, so services starting together against one server wait for each other instead of
 * racing to create the same tables, and a failed migration leaves nothing half-applied.
 */
export async function migrate(client: SqlClient, options: MigrateOptions = {}): Promise<void> {
  const { logger } = options;
  const applied = await client.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    const postgrator = new Postgrator({
      driver: 'pg',
      schemaTable: SCHEMA_TABLE,
      migrationPattern: MIGRATION_PATTERN,
      // Without parameters, a query may be a whole script (see SqlClient.query).
      execQuery: (sql) => tx.query(sql),
    });
    postgrator.on('migration-started', (m) => logger?.info({ version: m.version, name: m.name }, 'applying migration'));
    return postgrator.migrate();
  });
  logger?.debug({ applied: applied.length }, 'database schema up to date');
}
