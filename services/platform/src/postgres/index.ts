export { createPostgresJobStore } from './job-store.ts';
export type { PostgresJobStoreOptions } from './job-store.ts';
export { createPgliteJobStore, createPgliteSqlClient } from './pglite.ts';
export type { PgliteJobStoreOptions } from './pglite.ts';
export type { SqlClient } from './sql-client.ts';
