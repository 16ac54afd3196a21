/**
 * Creates an embedded PostgreSQL database in the folder given as the only argument, then exits.
 * `createPgliteJobStore` runs it as a child process on first start: initdb runs in WASM and the
 * memory it touches stays with the process that ran it, a few hundred MB a long-running service
 * would otherwise carry for its whole life.
 */
import { PGlite } from '@electric-sql/pglite';

const dataDir = process.argv[2];
if (!dataDir) {
  console.error('usage: pglite-init.ts <dataDir>');
  process.exit(2);
}
const db = await PGlite.create({ dataDir });
await db.close();
