import {
  JOB_STATES,
  OrchestratorError,
  isOrchestratorError,
  type Job,
  type IdempotencyRecord,
  type JobActivity,
  type JobFailure,
  type JobPage,
  type JobQuery,
  type JobState,
  type JobStore,
  type PoolQueue,
  type Priority,
  type RecoveryQuery,
  type TenantScope,
  type Transition,
  type WorkerPresence,
} from '@orch/core';
import type { Logger } from 'pino';
import { migrate } from './migrate.ts';
import type { SqlClient } from './sql-client.ts';
import { createBatcher } from '../shared/batcher.ts';
import type { Batcher } from '../shared/batcher.ts';
import { NETWORK_ERROR_CODES } from '../shared/network-errors.ts';

export interface PostgresJobStoreOptions {
  logger?: Logger;
  /**
   * Group-commit statements of one kind running at once (see `PostgresJobStore`): 1 for a single
   * connection (PGlite), more for a pool. @default 1
   */
  maxBatchesInFlight?: number;
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
  return new PostgresJobStore(client, options.maxBatchesInFlight ?? 1);
}

/** How long a dispatch mark waits for others to share its statement. */
const DISPATCH_MARK_LINGER_IN_MS = 100;

/** States whose job needs a queue message; entering one of them clears `dispatched_at`. */
const MESSAGE_STATES = `('submitted', 'queued', 'retrying')`;
/** Jobs that count against a tenant's quota; `jobs_tenant_live_idx` covers exactly these. */
const LIVE_STATES = `('submitted', 'queued', 'retrying', 'running')`;
const TERMINAL_STATES_SQL = `('succeeded', 'failed', 'cancelled')`;

/**
 * The condition (and its parameter, numbered `$index`) that limits an aggregate to `scope`'s
 * tenant; empty for every tenant's jobs.
 */
const tenantWhere = (scope: TenantScope, index: number): { where: string; params: string[] } =>
  scope.tenant === undefined
    ? { where: '', params: [] }
    : { where: `tenant = $${index}::text`, params: [scope.tenant] };

/**
 * `state` for a statement that finds its rows by id: the expression hides the column from the
 * planner, which must then use the primary key. Given a bare `state IN (...)`, it sometimes picks
 * the state indexes instead, scanning every live job, because a young or fast-changing table's
 * statistics make live jobs look rare (seen at 10–20 ms a statement on 10,000 jobs, not 0.5 ms).
 */
const STATE_BY_ID = `(state || '')`;

/** Rows per INSERT: 22 parameters each, well under PostgreSQL's 65,535 per statement. */
const INSERT_CHUNK_ROWS = 500;

/** Text in exactly `Date.prototype.toISOString()` form, whatever the driver makes of timestamptz. */
const iso = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The SELECT/RETURNING list that `toJob` reads, its columns qualified with `table` when given. */
const jobColumns = (table?: string): string => {
  const c = (column: string): string => (table ? `${table}.${column}` : column);
  return [
    c('id'),
    c('tenant'),
    c('state'),
    c('version'),
    c('priority'),
    `${c('rows')}::float8 AS rows`,
    c('estimated_runtime_sec'),
    c('latency_sensitive'),
    c('type'),
    c('data'),
    c('queue'),
    c('cost'),
    c('reason'),
    c('attempts'),
    c('max_attempts'),
    c('error'),
    c('result_key'),
    c('batch_task_id'),
    `${iso(c('created_at'))} AS created_at`,
    `${iso(c('updated_at'))} AS updated_at`,
    `${iso(c('heartbeat_at'))} AS heartbeat_at`,
    `${iso(c('next_attempt_at'))} AS next_attempt_at`,
    c('history'),
  ].join(', ');
};
const JOB_COLUMNS = jobColumns();

/** Written columns in parameter order, with the cast each parameter gets. */
const WRITE_COLUMNS: readonly (readonly [column: string, cast: string])[] = [
  ['id', 'text'],
  ['tenant', 'text'],
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
    job.tenant,
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

/** Every column but `id`, `tenant` and `created_at`, which never change, and `version`, which the store bumps. */
const MUTABLE_COLUMNS = WRITE_COLUMNS.map(([column, cast], index) => ({ column, cast, index })).filter(
  ({ column }) => !['id', 'tenant', 'version', 'created_at'].includes(column),
);

/**
 * Compare-and-set of many jobs in one statement. Parameters are one array per column: $1 ids, $2
 * expected versions, then the `MUTABLE_COLUMNS`; a row is written only where its version still
 * matches. The store maintains `dispatched_at`, `started_at` and `finished_at` itself.
 */
const UPDATE_MANY_SQL = (() => {
  const names = MUTABLE_COLUMNS.map(({ column }) => column);
  const arrays = MUTABLE_COLUMNS.map(({ cast }, k) => `$${k + 3}::${cast}[]`);
  const sets = names.map((column) => `${column} = v.${column}`);
  return `UPDATE jobs SET ${sets.join(', ')}, version = jobs.version + 1,
      dispatched_at = CASE WHEN v.state IN ${MESSAGE_STATES} AND jobs.state <> v.state THEN NULL ELSE jobs.dispatched_at END,
      started_at = COALESCE(jobs.started_at, CASE WHEN v.state = 'running' THEN v.updated_at END),
      finished_at = CASE WHEN v.state IN ${TERMINAL_STATES_SQL} THEN COALESCE(jobs.finished_at, v.updated_at) END
    FROM unnest($1::text[], $2::integer[], ${arrays.join(', ')}) AS v(id, if_version, ${names.join(', ')})
    WHERE jobs.id = ANY($1::text[]) AND jobs.id = v.id AND jobs.version = v.if_version
    RETURNING ${jobColumns('jobs')}`;
})();

/** `UPDATE_MANY_SQL`'s parameters for these updates (whose ids must be distinct). */
function toUpdateManyParams(updates: readonly JobUpdate[]): unknown[] {
  const rows = updates.map(({ job }) => toParams(job));
  return [
    updates.map(({ job }) => job.id),
    updates.map(({ ifVersion }) => ifVersion),
    ...MUTABLE_COLUMNS.map(({ index }) => rows.map((row) => row[index])),
  ];
}

interface CreateCall {
  jobs: readonly Job[];
  idempotency?: IdempotencyRecord;
}

/**
 * Records an idempotency key in `tx`: an expired record under the key is replaced; a live one makes
 * the insert fail (unique violation on `idempotency_keys_pkey`). Also purges a few other expired
 * keys, so the table stays bounded without a job of its own.
 */
async function claimIdempotencyKey(tx: SqlClient, record: IdempotencyRecord): Promise<void> {
  await tx.query(
    `DELETE FROM idempotency_keys
      WHERE (tenant = $1::text AND key = $2::text AND expires_at <= $3::timestamptz)
         OR ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at <= $3::timestamptz LIMIT 100)`,
    [record.tenant, record.key, record.createdAt],
  );
  await tx.query(
    `INSERT INTO idempotency_keys (tenant, key, request_hash, job_ids, created_at, expires_at)
     VALUES ($1::text, $2::text, $3::text, $4::jsonb, $5::timestamptz, $6::timestamptz)`,
    [record.tenant, record.key, record.requestHash, JSON.stringify(record.jobIds), record.createdAt, record.expiresAt],
  );
}

interface JobUpdate {
  job: Job;
  ifVersion: number;
}

interface JobRow {
  id: string;
  tenant: string;
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
    tenant: row.tenant,
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

/**
 * The hot operations (`createJobs`, `getJob`, `updateJob`, `markDispatched`) go through group
 * commit: calls made while the previous statement of their kind runs are sent together as one
 * statement, so a busy pipeline pays one round trip (and, on PGlite, one parse) per batch rather
 * than per job. Semantics are per call, as if each ran alone.
 */
class PostgresJobStore implements JobStore {
  readonly #client: SqlClient;
  #closed = false;
  readonly #creates: Batcher<CreateCall, Error | undefined>;
  readonly #reads: Batcher<string, Job | undefined>;
  readonly #updates: Batcher<JobUpdate, Job | undefined>;
  readonly #dispatches: Batcher<{ ids: readonly string[]; at: Date }, void>;

  constructor(client: SqlClient, maxBatchesInFlight: number) {
    this.#client = client;
    const maxInFlight = maxBatchesInFlight;
    this.#creates = createBatcher({ maxInFlight, run: (calls) => this.#createMany(calls) });
    this.#reads = createBatcher({
      maxInFlight,
      run: async (ids) => {
        const byId = new Map((await this.#selectJobs(ids)).map((job) => [job.id, job]));
        return ids.map((id) => byId.get(id));
      },
    });
    this.#updates = createBatcher({
      maxInFlight,
      // Two updates of one job never share a statement: the second waits and then loses its CAS.
      keyOf: (update) => update.job.id,
      run: async (updates) => {
        const { rows } = await this.#client.query<JobRow>(UPDATE_MANY_SQL, toUpdateManyParams(updates), {
          prepare: 'orch_update_jobs',
        });
        const byId = new Map(rows.map((row) => [row.id, toJob(row)]));
        return updates.map(({ job }) => byId.get(job.id));
      },
    });
    this.#dispatches = createBatcher({
      maxInFlight,
      // Marks only tell the reconciler (which waits tens of seconds) a message went out: a quiet
      // pipeline sends one statement per interval for all of them, not one per job.
      lingerInMs: DISPATCH_MARK_LINGER_IN_MS,
      run: async (calls) => {
        // Calls batched together are at most the linger apart: they share the latest time.
        const at = new Date(Math.max(...calls.map((call) => call.at.getTime())));
        await this.#client.query(
          `UPDATE jobs SET dispatched_at = $2::timestamptz
            WHERE id = ANY($1::text[]) AND ${STATE_BY_ID} IN ${MESSAGE_STATES}`,
          [calls.flatMap((call) => call.ids), at.toISOString()],
          { prepare: 'orch_mark_dispatched' },
        );
        return calls.map(() => undefined);
      },
    });
  }

  createJobs(jobs: readonly Job[], options: { idempotency?: IdempotencyRecord } = {}): Promise<void> {
    if (jobs.length === 0 && !options.idempotency) return Promise.resolve();
    return this.#run(async () => {
      const error = await this.#creates.add({ jobs, ...(options.idempotency && { idempotency: options.idempotency }) });
      if (error) throw error;
    });
  }

  getIdempotencyRecord(tenant: string, key: string, now: Date): Promise<IdempotencyRecord | undefined> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<{
        request_hash: string;
        job_ids: string[];
        created_at: string;
        expires_at: string;
      }>(
        `SELECT request_hash, job_ids, ${iso('created_at')} AS created_at, ${iso('expires_at')} AS expires_at
           FROM idempotency_keys WHERE tenant = $1::text AND key = $2::text AND expires_at > $3::timestamptz`,
        [tenant, key, now.toISOString()],
      );
      const row = rows[0];
      return (
        row && {
          tenant,
          key,
          requestHash: row.request_hash,
          jobIds: row.job_ids,
          createdAt: row.created_at,
          expiresAt: row.expires_at,
        }
      );
    });
  }

  /**
   * Inserts the jobs of several calls in one transaction. If that fails (one call's id exists), each
   * call is retried alone, so only the calls that conflict fail.
   */
  async #createMany(calls: readonly CreateCall[]): Promise<(Error | undefined)[]> {
    const insertChunk = (client: SqlClient, chunk: readonly Job[]) => {
      const params: unknown[] = [];
      const tuples = chunk.map((job) => {
        const base = params.length;
        params.push(...toParams(job));
        return `(${WRITE_COLUMNS.map(([, cast], i) => `$${base + i + 1}::${cast}`).join(', ')})`;
      });
      return client.query(INSERT_PREFIX + tuples.join(', '), params);
    };
    const insert = async (jobs: readonly Job[], records: readonly IdempotencyRecord[]): Promise<void> => {
      // One statement is atomic on its own: no BEGIN and COMMIT round trips for the common case.
      if (records.length === 0 && jobs.length <= INSERT_CHUNK_ROWS) {
        await insertChunk(this.#client, jobs);
        return;
      }
      await this.#client.transaction(async (tx) => {
        for (const record of records) await claimIdempotencyKey(tx, record);
        for (let start = 0; start < jobs.length; start += INSERT_CHUNK_ROWS) {
          await insertChunk(tx, jobs.slice(start, start + INSERT_CHUNK_ROWS));
        }
      });
    };
    const recordsOf = (call: CreateCall) => (call.idempotency ? [call.idempotency] : []);
    if (calls.length === 1 && calls[0]) {
      await insert(calls[0].jobs, recordsOf(calls[0]));
      return [undefined];
    }
    try {
      await insert(
        calls.flatMap((call) => call.jobs),
        calls.flatMap(recordsOf),
      );
      return calls.map(() => undefined);
    } catch {
      return Promise.all(
        calls.map((call) =>
          insert(call.jobs, recordsOf(call)).then(
            () => undefined,
            (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
          ),
        ),
      );
    }
  }

  getJob(id: string): Promise<Job | undefined> {
    return this.#run(() => this.#reads.add(id));
  }

  async #selectJobs(ids: readonly string[]): Promise<Job[]> {
    const { rows } = await this.#client.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[])`,
      [[...ids]],
      { prepare: 'orch_select_jobs' },
    );
    return rows.map(toJob);
  }

  getJobs(ids: readonly string[]): Promise<Job[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#run(() => this.#selectJobs(ids));
  }

  updateJob(job: Job, options: { ifVersion: number }): Promise<Job | undefined> {
    return this.#run(() => this.#updates.add({ job, ifVersion: options.ifVersion }));
  }

  queryJobs(query: JobQuery): Promise<JobPage> {
    const limit = query.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      return Promise.reject(new OrchestratorError('VALIDATION_FAILED', `invalid limit: ${String(limit)}`));
    }
    const params: unknown[] = [];
    const where: string[] = [];
    if (query.tenant !== undefined) {
      params.push(query.tenant);
      where.push(`tenant = $${params.length}::text`);
    }
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
    return this.#run(() => this.#dispatches.add({ ids, at }));
  }

  recordHeartbeat(ids: readonly string[], at: Date): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.#run(async () => {
      const { rows } = await this.#client.query<{ id: string }>(
        `WITH beaten AS (
            UPDATE jobs SET heartbeat_at = $2::timestamptz
             WHERE id = ANY($1::text[]) AND ${STATE_BY_ID} = 'running'
            RETURNING id
          )
          SELECT DISTINCT given.id FROM unnest($1::text[]) AS given(id)
           WHERE NOT EXISTS (SELECT 1 FROM beaten WHERE beaten.id = given.id)`,
        [[...ids], at.toISOString()],
        { prepare: 'orch_record_heartbeat' },
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

  countLiveJobs(tenant: string): Promise<number> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<{ n: number }>(
        `SELECT count(*)::integer AS n FROM jobs WHERE tenant = $1::text AND state IN ${LIVE_STATES}`,
        [tenant],
      );
      return rows[0]?.n ?? 0;
    });
  }

  countByState(options: TenantScope = {}): Promise<Record<JobState, number>> {
    const { where, params } = tenantWhere(options, 1);
    return this.#run(async () => {
      const { rows } = await this.#client.query<{ state: JobState; n: number }>(
        `SELECT state, count(*)::integer AS n FROM jobs ${where && `WHERE ${where}`} GROUP BY state`,
        params,
      );
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const { state, n } of rows) counts[state] = n;
      return counts;
    });
  }

  getActivity(since: Date, options: TenantScope = {}): Promise<JobActivity> {
    const { where, params } = tenantWhere(options, 2);
    const andTenant = where && `AND ${where}`;
    return this.#run(async () => {
      const { rows } = await this.#client.query<{
        succeeded: number;
        failed: number;
        started: number;
        p50: number | null;
        p95: number | null;
        p99: number | null;
      }>(
        // A dashboard's window is seconds long: the time indexes (jobs_finished_idx, jobs_started_idx)
        // find every tenant's few recent jobs, and the tenant is a filter on those. An index on
        // (tenant, time) would save little here and cost an entry on every start and finish.
        `WITH finished AS (
            SELECT count(*) FILTER (WHERE state = 'succeeded')::integer AS succeeded,
                   count(*) FILTER (WHERE state = 'failed')::integer AS failed
              FROM jobs WHERE finished_at >= $1::timestamptz ${andTenant}
          ), started AS (
            SELECT count(*)::integer AS started,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
                     ORDER BY extract(epoch FROM started_at - created_at) * 1000) AS p
              FROM jobs WHERE started_at >= $1::timestamptz ${andTenant}
          )
          SELECT succeeded, failed, started, p[1] AS p50, p[2] AS p95, p[3] AS p99 FROM finished, started`,
        [since.toISOString(), ...params],
      );
      const row = rows[0];
      if (!row) throw new Error('activity query returned no row');
      return {
        succeeded: row.succeeded,
        failed: row.failed,
        started: row.started,
        dispatchLatencyInMs:
          row.started === 0 || row.p50 === null
            ? null
            : { p50: Number(row.p50), p95: Number(row.p95), p99: Number(row.p99) },
      };
    });
  }

  recordWorker(worker: WorkerPresence): Promise<void> {
    return this.#run(async () => {
      await this.#client.query(
        `INSERT INTO workers (id, pool, concurrency, in_flight, seen_at)
           VALUES ($1::text, $2::text, $3::integer, $4::integer, $5::timestamptz)
         ON CONFLICT (id) DO UPDATE SET pool = EXCLUDED.pool, concurrency = EXCLUDED.concurrency,
           in_flight = EXCLUDED.in_flight, seen_at = EXCLUDED.seen_at`,
        [worker.id, worker.pool, worker.concurrency, worker.inFlight, worker.seenAt],
      );
    });
  }

  removeWorker(id: string): Promise<void> {
    return this.#run(async () => {
      await this.#client.query('DELETE FROM workers WHERE id = $1::text', [id]);
    });
  }

  listWorkers(since: Date): Promise<WorkerPresence[]> {
    return this.#run(async () => {
      const { rows } = await this.#client.query<{
        id: string;
        pool: PoolQueue;
        concurrency: number;
        in_flight: number;
        seen_at: string;
      }>(
        `SELECT id, pool, concurrency, in_flight, ${iso('seen_at')} AS seen_at
           FROM workers WHERE seen_at >= $1::timestamptz ORDER BY pool, id`,
        [since.toISOString()],
      );
      return rows.map((r) => ({
        id: r.id,
        pool: r.pool,
        concurrency: r.concurrency,
        inFlight: r.in_flight,
        seenAt: r.seen_at,
      }));
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
    // Marks nobody awaited (and any other batched call) are written before the connections close.
    await Promise.all([this.#creates, this.#reads, this.#updates, this.#dispatches].map((b) => b.drain()));
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
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  ...NETWORK_ERROR_CODES,
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
  if (code === '23505' && constraintOf(e) === 'jobs_pkey') {
    return new OrchestratorError('CONFLICT', `job already exists: ${detailOf(e) ?? messageOf(e)}`, { cause: e });
  }
  if (code === '23505' && constraintOf(e) === 'idempotency_keys_pkey') {
    return new OrchestratorError('IDEMPOTENCY_KEY_IN_USE', 'the idempotency key is already in use', { cause: e });
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

function constraintOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('constraint' in e)) return undefined;
  return typeof e.constraint === 'string' ? e.constraint : undefined;
}

function detailOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('detail' in e)) return undefined;
  return typeof e.detail === 'string' ? e.detail : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
