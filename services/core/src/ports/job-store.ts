import type { Job, JobState, PoolQueue } from '../job/job.ts';

/**
 * Job records: the source of truth. Updates are compare-and-set on `version`, so a duplicate
 * delivery can never run a finished job again. PostgreSQL behind it (embedded in embedded mode).
 */
export interface JobStore {
  /** Inserts jobs, all or none. Throws `CONFLICT` if any id already exists. */
  createJobs(jobs: readonly Job[]): Promise<void>;
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
  /** Records that the messages for these jobs were accepted by the transport. */
  markDispatched(ids: readonly string[], at: Date): Promise<void>;
  /**
   * Refreshes the heartbeat of running jobs; returns the ids among them that are no longer running
   * (cancelled, or taken over by recovery), whose work should stop.
   */
  recordHeartbeat(ids: readonly string[], at: Date): Promise<string[]>;
  /** Jobs the reconciler should look at; see `RecoveryQuery`. */
  findJobsToRecover(query: RecoveryQuery): Promise<Job[]>;
  /** Job counts by state (for status pages). */
  countByState(): Promise<Record<JobState, number>>;
  /** Throws `DEPENDENCY_UNAVAILABLE` when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface JobQuery {
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
