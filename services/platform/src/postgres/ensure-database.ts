import pg from 'pg';

/**
 * Creates the database named in `connectionString` when it does not exist yet, connecting to the
 * server's `postgres` database to do so. For local mode's first start; in Azure the infrastructure
 * creates the database.
 */
export async function ensurePgDatabase(connectionString: string): Promise<{ created: boolean }> {
  const url = new URL(connectionString);
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount) return { created: false };
    try {
      await client.query(`create database ${pg.escapeIdentifier(database)}`);
    } catch (e) {
      // Another process created it in the meantime.
      if ((e as { code?: string }).code !== '42P04') throw e;
      return { created: false };
    }
    return { created: true };
  } finally {
    await client.end();
  }
}
