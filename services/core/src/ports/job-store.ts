import type { Job, JobState, PoolQueue } from '../job/job.ts';

/**
 * Job records: the source of truth. Updates are compare-and-set on `version`, so a duplicate
 * delivery can never run a finished job again. PostgreSQL behind it (embedded in embedded mode).
 */
export interface JobStore {
  /**
   * Inserts jobs, all or none. Throws `CONFLICT` if any id already exists. With `idempotency`, the
   * key's record is written in the same transaction; if the tenant already holds an unexpired record
   * under that key, nothing is written and it throws `IDEMPOTENCY_KEY_IN_USE` (read the record with
   * `getIdempotencyRecord`).
   */
  createJobs(jobs: readonly Job[], options?: { idempotency?: IdempotencyRecord }): Promise<void>;
  /** The tenant's unexpired record under `key`, if any. */
  getIdempotencyRecord(tenant: string, key: string, now: Date): Promise<IdempotencyRecord | undefined>;
  /** `undefined` when there is no such job. */
  getJob(id: string): Promise<Job | undefined>;
  /** The jobs that exist among `ids`, in no particular order. */
  getJobs(ids: readonly string[]): Promise<Job[]>;
  /**
   * Writes `job` if the stored version is still `ifVersion`; returns the stored job (its version
   * incremented), or `undefined` when someone else updated it first.
   */
  updateJob(job: Job, options: { ifVersion: number }): Promise<Job | undefined>;
  /** A page of jobs, newest first. */
  queryJobs(query: JobQuery): Promise<JobPage>;
  /**
   * Records that the messages for these jobs were accepted by the transport, so the reconciler
   * leaves them alone. Bookkeeping only: a store may hold marks briefly to write many at once
   * (they are written before `close` returns), and a lost mark only means a harmless re-send.
   */
  markDispatched(ids: readonly string[], at: Date): Promise<void>;
  /**
   * Refreshes the heartbeat of running jobs; returns the ids among them that are no longer running
   * (cancelled, or taken over by recovery), whose work should stop.
   */
  recordHeartbeat(ids: readonly string[], at: Date): Promise<string[]>;
  /** Jobs the reconciler should look at; see `RecoveryQuery`. */
  findJobsToRecover(query: RecoveryQuery): Promise<Job[]>;
  /**
   * The tenant's live jobs (submitted, queued, retrying or running): what its quota counts.
   */
  countLiveJobs(tenant: string): Promise<number>;
  /** Job counts by state (for status pages): one tenant's, or every tenant's without `tenant`. */
  countByState(options?: TenantScope): Promise<Record<JobState, number>>;
  /**
   * What happened since `since`, for dashboards: jobs finished, and how long started ones waited;
   * one tenant's jobs, or every tenant's without `tenant`. Meant for short, recent windows (seconds).
   */
  getActivity(since: Date, options?: TenantScope): Promise<JobActivity>;
  /** Upserts a worker's presence and load; each worker process calls it on a timer. */
  recordWorker(worker: WorkerPresence): Promise<void>;
  /** Forgets a worker (on a clean shutdown). Idempotent. */
  removeWorker(id: string): Promise<void>;
  /** Workers seen at or after `since`. */
  listWorkers(since: Date): Promise<WorkerPresence[]>;
  /** Throws `DEPENDENCY_UNAVAILABLE` when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Which jobs an aggregate covers. */
export interface TenantScope {
  /** Only this tenant's jobs; absent: every tenant's (admins). */
  tenant?: string;
}

export interface JobQuery {
  /** Only this tenant's jobs; absent: every tenant's (admins). */
  tenant?: string;
  state?: JobState;
  queue?: PoolQueue;
  /** @default 50 */
  limit: number;
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

export interface RecoveryQuery {
  /**
   * Jobs in `submitted`, `queued` or `retrying` that need a message: those never marked dispatched
   * and last updated before this time...
   */
  undispatchedBefore: Date;
  /**
   * ...and, when set, also those whose last dispatch was before this time (the transport lost its
   * messages, e.g. an in-process transport after a restart). Marking them dispatched again takes
   * them out of the next page.
   */
  dispatchedBefore?: Date;
  /** Running jobs whose heartbeat (or, without one, last update) is older than this. */
  heartbeatBefore: Date;
  /** Oldest first. */
  limit: number;
}

export interface JobActivity {
  /** Jobs that reached `succeeded` / `failed` at or after `since`. */
  succeeded: number;
  failed: number;
  /** Jobs that first started at or after `since`. */
  started: number;
  /** Dispatch latency (created → first start) of those jobs, in ms; `null` when none started. */
  dispatchLatencyInMs: { p50: number; p95: number; p99: number } | null;
}

/** A process consuming a pool: a worker replica, or the batch submitter for a batch pool. */
export interface WorkerPresence {
  /** Unique per process, e.g. `<hostname>:<pid>:<pool>`. */
  id: string;
  pool: PoolQueue;
  /** Jobs (or, for batch pools, tasks) it may run at once. */
  concurrency: number;
  inFlight: number;
  /** ISO-8601. */
  seenAt: string;
}

/** What an `Idempotency-Key` remembers: which request it was given with, and the jobs it created. */
export interface IdempotencyRecord {
  tenant: string;
  key: string;
  /** A hash of the request (route and normalized body); the same key with another request is refused. */
  requestHash: string;
  jobIds: string[];
  /** ISO-8601. */
  createdAt: string;
  /** ISO-8601; after this the key may be used again. */
  expiresAt: string;
}
