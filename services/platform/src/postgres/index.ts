export { createPostgresJobStore } from './job-store.ts';
export type { PostgresJobStoreOptions } from './job-store.ts';
export { createPgliteJobStore, createPgliteSqlClient } from './pglite.ts';
export type { PgliteJobStoreOptions } from './pglite.ts';
export type { SqlClient } from './sql-client.ts';
export { ensurePgDatabase } from './ensure-database.ts';
export { ENTRA_POSTGRES_SCOPE, createPgServerJobStore, createPgSqlClient } from './pg-client.ts';
export type { PgServerJobStoreOptions, PgSqlClientOptions } from './pg-client.ts';
