/**
 * The little the PostgreSQL adapters need from a database driver, so the same SQL runs on embedded
 * PGlite and on a `pg` Pool against a server. Values go in as `$n` parameters; a `timestamptz`
 * column may come back as a `Date` or a string, so the queries that read one format it as text.
 */
export interface SqlClient {
  /**
   * Runs one statement with `$1…$n` parameters and returns its rows. Without `params`, `sql` may
   * hold several statements (a migration script); the rows are then those of the last one.
   */
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<{ rows: T[] }>;
  /**
   * Runs `fn` in one transaction on one connection: committed when `fn` resolves, rolled back when
   * it throws (the error is rethrown). `tx` must not be used after `fn` settles.
   */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Releases the connection(s). The store that was given this client calls it from its own `close`. */
  close(): Promise<void>;
}

export interface QueryOptions {
  /**
   * Prepares the statement once per connection under this name and reuses it, which saves parsing
   * and planning on hot paths. Only for statements whose text never changes (with `params`).
   * Drivers without prepared statements ignore it.
   */
  prepare?: string;
}
