import {
  JOB_STATES,
  OrchestratorError,
  isOrchestratorError,
  type Job,
  type JobFailure,
  type JobPage,
  type JobQuery,
  type JobState,
  type JobStore,
  type PoolQueue,
  type Priority,
  type RecoveryQuery,
  type Transition,
} from '@orch/core';
import type { Logger } from 'pino';
import { migrate } from './migrate.ts';
import type { SqlClient } from './sql-client.ts';

export interface PostgresJobStoreOptions {
  logger?: Logger;
}

/**
 * A `JobStore` over any `SqlClient` (PGlite, or a `pg` Pool on PostgreSQL 15+). Migrates the schema
 * first; the store owns `client` from then on and closes it in `close()`.
 */
export async function createPostgresJobStore(
  client: SqlClient,
  options: PostgresJobStoreOptions = {},
): Promise<JobStore> {
  try {
    await migrate(client, options);
  } catch (e) {
    throw translateError(e);
  }
  return new PostgresJobStore(client);
}

/** States whose job needs a queue message; entering one of them clears `dispatched_at`. */
const MESSAGE_STATES = `('submitted', 'queued', 'retrying')`;

/** Rows per INSERT: 22 parameters each, well under PostgreSQL's 65,535 per statement. */
const INSERT_CHUNK_ROWS = 500;

/** Text in exactly `Date.prototype.toISOString()` form, whatever the driver makes of timestamptz. */
const iso = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The SELECT/RETURNING list that `toJob` reads. */
const JOB_COLUMNS = [
  'id',
  'state',
  'version',
  'priority',
  'rows::float8 AS rows',
  'estimated_runtime_sec',
  'latency_sensitive',
  'type',
  'data',
  'queue',
  'cost',
  'reason',
  'attempts',
  'max_attempts',
  'error',
  'result_key',
  'batch_task_id',
  `${iso('created_at')} AS created_at`,
  `${iso('updated_at')} AS updated_at`,
  `${iso('heartbeat_at')} AS heartbeat_at`,
  `${iso('next_attempt_at')} AS next_attempt_at`,
  'history',
].join(', ');

/** Written columns in parameter order, with the cast each parameter gets. */
const WRITE_COLUMNS: readonly (readonly [column: string, cast: string])[] = [
  ['id', 'text'],
  ['state', 'text'],
  ['version', 'integer'],
  ['priority', 'text'],
  ['rows', 'bigint'],
  ['estimated_runtime_sec', 'float8'],
  ['latency_sensitive', 'boolean'],
  ['type', 'text'],
  ['data', 'jsonb'],
  ['queue', 'text'],
  ['cost', 'float8'],
  ['reason', 'text'],
  ['attempts', 'integer'],
  ['max_attempts', 'integer'],
  ['error', 'jsonb'],
  ['result_key', 'text'],
  ['batch_task_id', 'text'],
  ['created_at', 'timestamptz'],
  ['updated_at', 'timestamptz'],
  ['heartbeat_at', 'timestamptz'],
  ['next_attempt_at', 'timestamptz'],
  ['history', 'jsonb'],
];

const INSERT_PREFIX = `INSERT INTO jobs (${WRITE_COLUMNS.map(([c]) => c).join(', ')}) VALUES `;

/** Parameters in `WRITE_COLUMNS` order. JSON goes in as text: `pg` would send a JS array as a SQL array. */
function toParams(job: Job): unknown[] {
  return [
    job.id,
    job.state,
    job.version,
    job.priority,
    job.rows,
    job.estimatedRuntimeSec,
    job.latencySensitive,
    job.type,
    JSON.stringify(job.data),
    job.decision?.queue ?? null,
    job.decision?.cost ?? null,
    job.decision?.reason ?? null,
    job.attempts,
    job.maxAttempts,
    job.error === null ? null : JSON.stringify(job.error),
    job.resultKey,
    job.batchTaskId,
    job.createdAt,
    job.updatedAt,
    job.heartbeatAt,
    job.nextAttemptAt,
    JSON.stringify(job.history),
  ];
}

/** Every column but `id` and `created_at`, which never change, and `version`, which the store bumps. */
const MUTABLE_COLUMNS = WRITE_COLUMNS.map(([column, cast], index) => ({ column, cast, index })).filter(
  ({ column }) => !['id', 'version', 'created_at'].includes(column),
);

/** Parameters: $1 id, $2 the expected version, then the `MUTABLE_COLUMNS`. */
const UPDATE_SQL = (() => {
  const placeholders = new Map(MUTABLE_COLUMNS.map(({ column, cast }, k) => [column, `$${k + 3}::${cast}`]));
  const sets = MUTABLE_COLUMNS.map(({ column }) => `${column} = ${placeholders.get(column)}`);
  const state = placeholders.get('state') ?? '';
  // A job entering a state that needs a message has none yet; staying in it keeps the one it has.
  return `UPDATE jobs SET ${sets.join(', ')}, version = jobs.version + 1,
      dispatched_at = CASE WHEN ${state} IN ${MESSAGE_STATES} AND jobs.state <> ${state} THEN NULL ELSE jobs.dispatched_at END
    WHERE id = $1::text AND version = $2::integer
    RETURNING ${JOB_COLUMNS}`;
})();

function toUpdateParams(job: Job, ifVersion: number): unknown[] {
  const all = toParams(job);
  return [job.id, ifVersion, ...MUTABLE_COLUMNS.map(({ index }) => all[index])];
}

interface JobRow {
  id: string;
  state: JobState;
  version: number;
  priority: Priority;
  rows: number | string;
  estimated_runtime_sec: number;
  latency_sensitive: boolean;
  type: string;
  data: Record<string, unknown>;
  queue: PoolQueue | null;
  cost: number | null;
  reason: string | null;
  attempts: number;
  max_attempts: number;
  error: JobFailure | null;
  result_key: string | null;
  batch_task_id: string | null;
  created_at: string;
  updated_at: string;
  heartbeat_at: string | null;
  next_attempt_at: string | null;
  history: Transition[];
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    state: row.state,
    version: row.version,
    priority: row.priority,
    rows: Number(row.rows),
    estimatedRuntimeSec: row.estimated_runtime_sec,
    latencySensitive: row.latency_sensitive,
    type: row.type,
    data: row.data,
    decision: row.queue === null ? null : { queue: row.queue, cost: row.cost ?? 0, reason: row.reason ?? '' },
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    error: row.error,
    resultKey: row.result_key,
    batchTaskId: row.batch_task_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    heartbeatAt: row.heartbeat_at,
    nextAttemptAt: row.next_attempt_at,
    history: row.history,
  };
}

class PostgresJobStore implements JobStore {
  readonly #client: SqlClient;
  #closed = false;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  createJobs(jobs: readonly Job[]): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    return this.#run(() =>
      this.#client.transaction(async (tx) => {
        for (let start = 0; start < jobs.length; start += INSERT_CHUNK_ROWS) {
          const chunk = jobs.slice(start, start + INSERT_CHUNK_ROWS);
          const params: unknown[] = [];
          const tuples = chunk.map((job) => {
            const base = params.length;
            params.push(...toParams(job));
            return `(${WRITE_COLUMNS.map(([, cast], i) => `$${base + i + 1}::${cast}`).join(', ')})`;
          });
          await tx.query(INSERT_PREFIX + tuples.join(', '), params);
        }
      }),
    );
  }

  getJob(id: string): Promise<Job | undefined> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1::text`, [id]);
      return rows[0] && toJob(rows[0]);
    });
  }

  getJobs(ids: readonly string[]): Promise<Job[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#run(async () => {
      const { rows } = await this.#client.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[])`, [
        [...ids],
      ]);
      return rows.map(toJob);
    });
  }

  updateJob(job: Job, options: { ifVersion: number }): Promise<Job | undefined> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<JobRow>(UPDATE_SQL, toUpdateParams(job, options.ifVersion));
      return rows[0] && toJob(rows[0]);
    });
  }

  queryJobs(query: JobQuery): Promise<JobPage> {
    const limit = query.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      return Promise.reject(new OrchestratorError('VALIDATION_FAILED', `invalid limit: ${String(limit)}`));
    }
    const params: unknown[] = [];
    const where: string[] = [];
    if (query.state !== undefined) {
      params.push(query.state);
      where.push(`state = $${params.length}::text`);
    }
    if (query.queue !== undefined) {
      params.push(query.queue);
      where.push(`queue = $${params.length}::text`);
    }
    if (query.cursor !== undefined) {
      const after = decodeCursor(query.cursor);
      if (after === undefined) return Promise.reject(new OrchestratorError('VALIDATION_FAILED', 'invalid cursor'));
      params.push(after.createdAt, after.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::text)`);
    }
    params.push(limit + 1);
    // The cursor keeps microseconds, so paging stays exact even for rows written by other means.
    const sql = `SELECT ${JOB_COLUMNS},
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
      FROM jobs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC
      LIMIT $${params.length}::integer`;
    return this.#run(async () => {
      const { rows } = await this.#client.query<JobRow & { cursor_at: string }>(sql, params);
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        jobs: page.map(toJob),
        nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.cursor_at, id: last.id }) : null,
      };
    });
  }

  markDispatched(ids: readonly string[], at: Date): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.#run(async () => {
      await this.#client.query(
        `UPDATE jobs SET dispatched_at = $2::timestamptz
          WHERE id = ANY($1::text[]) AND state IN ${MESSAGE_STATES}`,
        [[...ids], at.toISOString()],
      );
    });
  }

  recordHeartbeat(ids: readonly string[], at: Date): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#run(async () => {
      const { rows } = await this.#client.query<{ id: string }>(
        `WITH beaten AS (
            UPDATE jobs SET heartbeat_at = $2::timestamptz
             WHERE id = ANY($1::text[]) AND state = 'running'
            RETURNING id
          )
          SELECT DISTINCT given.id FROM unnest($1::text[]) AS given(id)
           WHERE NOT EXISTS (SELECT 1 FROM beaten WHERE beaten.id = given.id)`,
        [[...ids], at.toISOString()],
      );
      return rows.map((r) => r.id);
    });
  }

  findJobsToRecover(query: RecoveryQuery): Promise<Job[]> {
    return this.#run(async () => {
      // Each branch can use the partial index on live jobs; the outer sort merges the two.
      const { rows } = await this.#client.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM (
            (SELECT *, coalesce(dispatched_at, updated_at) AS stale_since FROM jobs
              WHERE state IN ${MESSAGE_STATES}
                AND ((dispatched_at IS NULL AND updated_at < $1::timestamptz)
                  OR dispatched_at < $2::timestamptz)
              ORDER BY stale_since, id LIMIT $4::integer)
            UNION ALL
            (SELECT *, coalesce(heartbeat_at, updated_at) AS stale_since FROM jobs
              WHERE state = 'running' AND coalesce(heartbeat_at, updated_at) < $3::timestamptz
              ORDER BY stale_since, id LIMIT $4::integer)
          ) AS jobs
          ORDER BY stale_since, id
          LIMIT $4::integer`,
        [
          query.undispatchedBefore.toISOString(),
          query.dispatchedBefore?.toISOString() ?? null,
          query.heartbeatBefore.toISOString(),
          query.limit,
        ],
      );
      return rows.map(toJob);
    });
  }

  countByState(): Promise<Record<JobState, number>> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<{ state: JobState; n: number }>(
        'SELECT state, count(*)::integer AS n FROM jobs GROUP BY state',
      );
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const { state, n } of rows) counts[state] = n;
      return counts;
    });
  }

  async ping(): Promise<void> {
    try {
      await this.#client.query('SELECT 1', []);
    } catch (e) {
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', `job database unreachable: ${messageOf(e)}`, {
        retryable: true,
        cause: e,
      });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.close();
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw translateError(e);
    }
  }
}

interface Cursor {
  createdAt: string;
  id: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,6}Z$/;

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

function decodeCursor(text: string): Cursor | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== 'string' || typeof id !== 'string') return undefined;
  if (!CURSOR_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) return undefined;
  return { createdAt, id };
}

/** Node socket errors and PostgreSQL SQLSTATEs that mean "the database is not there right now". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/** Messages of `pg` and PGlite for a connection that is gone. */
const UNAVAILABLE_MESSAGE =
  /PGlite is closed|Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect/i;

/** Database errors to `OrchestratorError`s; anything unrecognised passes through unchanged. */
function translateError(e: unknown): unknown {
  if (isOrchestratorError(e)) return e;
  const code = errorCode(e);
  if (code === '23505') {
    return new OrchestratorError('CONFLICT', `job already exists: ${detailOf(e) ?? messageOf(e)}`, { cause: e });
  }
  if (
    (code !== undefined && (code.startsWith('08') || UNAVAILABLE_CODES.has(code))) ||
    UNAVAILABLE_MESSAGE.test(messageOf(e))
  ) {
    return new OrchestratorError('DEPENDENCY_UNAVAILABLE', `job database unavailable: ${messageOf(e)}`, {
      retryable: true,
      cause: e,
    });
  }
  return e;
}

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  return typeof e.code === 'string' ? e.code : undefined;
}

function detailOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('detail' in e)) return undefined;
  return typeof e.detail === 'string' ? e.detail : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
