import {
  consumeLanes,
  decideAfterFailure,
  DEFAULT_RETRY_POLICY,
  describeError,
  dispatchJobs,
  lanesOf,
  NO_JOB_METRICS,
  OrchestratorError,
  resultKeyFor,
  transition,
} from '@orch/core';
import type {
  BlobStore,
  HandlerRegistry,
  Job,
  JobMessage,
  JobMetrics,
  JobStore,
  MessageHandler,
  PoolQueue,
  QueueTransport,
  RetryPolicy,
  Subscription,
} from '@orch/core';
import { startPresence, untilAvailable } from '@orch/platform/runtime';
import type { Logger } from '@orch/platform/runtime';
import { executeHandler } from './execute.ts';

export interface WorkerDeps {
  store: JobStore;
  transport: QueueTransport;
  blobs: BlobStore;
  handlers: HandlerRegistry;
  logger: Logger;
  /** @default NO_JOB_METRICS */
  metrics?: JobMetrics;
  clock?: () => Date;
  random?: () => number;
}

export interface WorkerOptions {
  pool: PoolQueue;
  /** Jobs run at once. @default 4 */
  concurrency?: number;
  /** Spare slots for high-lane (urgent and high) jobs when all are busy. @default 1 */
  priorityHeadroom?: number;
  /** @default 300000 */
  jobTimeoutInMs?: number;
  /** How often a running job's heartbeat is recorded (and cancellation noticed). @default 5000 */
  heartbeatIntervalInMs?: number;
  retryPolicy?: RetryPolicy;
  /** @default 0 */
  simulatedDurationFactor?: number;
  /** Names this consumer in presence reports when a process runs several for one pool. */
  replicaName?: string;
}

type Held = <T>(what: string, operation: () => Promise<T>) => Promise<T>;

/**
 * Handles one pool message. The job starts only through a compare-and-set from `queued`/`retrying`
 * to `running`, so a duplicate or late message never runs a job twice or runs a cancelled one. The
 * result blob is written before the job is marked `succeeded`; a failure goes through the retry
 * policy: a delayed message for the next attempt, or `failed` and the message dead-lettered.
 */
export function createRunJob(deps: WorkerDeps, options: WorkerOptions): MessageHandler<JobMessage> {
  const clock = deps.clock ?? (() => new Date());
  const policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const heartbeatIntervalInMs = options.heartbeatIntervalInMs ?? 5_000;
  const metrics = deps.metrics ?? NO_JOB_METRICS;
  const { pool } = options;
  const heartbeats = createHeartbeats(deps, heartbeatIntervalInMs, clock);

  return async ({ body }, lockSignal) => {
    // Store calls wait out a database restart while holding the message (see untilAvailable).
    const held = <T>(what: string, operation: () => Promise<T>): Promise<T> =>
      untilAvailable(operation, { what: `${what} (job ${body.jobId})`, signal: lockSignal, logger: deps.logger });
    const job = await held('reading the job', () => deps.store.getJob(body.jobId));
    if (!job) {
      deps.logger.warn({ jobId: body.jobId }, 'message for an unknown job: dropped');
      return;
    }
    if (job.state !== 'queued' && job.state !== 'retrying') {
      deps.logger.debug({ jobId: job.id, state: job.state }, 'job not runnable: duplicate or stale message dropped');
      return;
    }
    const log = deps.logger.child({ jobId: job.id, pool: options.pool });
    const started = transition(job, 'running', {
      at: clock(),
      patch: { attempts: job.attempts + 1, heartbeatAt: clock().toISOString(), nextAttemptAt: null },
    });
    const running = await held('starting the job', () => deps.store.updateJob(started, { ifVersion: job.version }));
    if (!running) return; // another delivery started it, or it was cancelled meanwhile
    log.info({ attempt: running.attempts }, 'job started');
    const startedAt = clock().getTime();
    metrics.jobStarted(pool, job.priority, startedAt - Date.parse(job.nextAttemptAt ?? job.createdAt));
    metrics.inFlightChanged(pool, 1);
    const ranFor = (): number => clock().getTime() - startedAt;

    const cancel = new AbortController();
    const stopHeartbeat = heartbeats.add(running.id, cancel);

    try {
      const result = await executeHandler(
        running.type,
        {
          jobId: running.id,
          rows: running.rows,
          estimatedRuntimeSec: running.estimatedRuntimeSec,
          data: running.data,
          attempt: running.attempts,
        },
        {
          handlers: deps.handlers,
          signal: AbortSignal.any([cancel.signal, lockSignal]),
          timeoutInMs: options.jobTimeoutInMs ?? 300_000,
          simulatedDurationFactor: options.simulatedDurationFactor ?? 0,
        },
      );
      stopHeartbeat();
      await complete(running, result, log, ranFor, held);
    } catch (e) {
      stopHeartbeat();
      if (cancel.signal.aborted) {
        log.info('job stopped: it was cancelled or taken over while running');
        return;
      }
      await fail(running, e, log, ranFor, held);
    } finally {
      metrics.inFlightChanged(pool, -1);
    }
  };

  async function complete(
    job: Job,
    result: Record<string, unknown>,
    log: Logger,
    ranFor: () => number,
    held: Held,
  ): Promise<void> {
    const key = resultKeyFor(job.id);
    await held('storing the result', () =>
      deps.blobs.uploadBlob(key, JSON.stringify(result), { contentType: 'application/json' }),
    );
    const done = transition(job, 'succeeded', {
      at: clock(),
      patch: { resultKey: key, error: null, heartbeatAt: null },
    });
    if (await held('recording success', () => deps.store.updateJob(done, { ifVersion: job.version }))) {
      log.info({ resultKey: key }, 'job succeeded');
      metrics.jobFinished(pool, job.priority, 'succeeded', ranFor());
      return;
    }
    // Cancelled (or expired) while finishing: a job that did not succeed keeps no result.
    const current = await deps.store.getJob(job.id);
    if (current?.state !== 'succeeded') await deps.blobs.deleteBlob(key);
    log.info({ state: current?.state }, 'job finished but was no longer running: result discarded');
  }

  async function fail(job: Job, error: unknown, log: Logger, ranFor: () => number, held: Held): Promise<void> {
    const decision = decideAfterFailure(job, error, { policy, now: clock(), random: deps.random });
    const stored = await held('recording the failure', () =>
      deps.store.updateJob(decision.job, { ifVersion: job.version }),
    );
    if (!stored) return;
    if (decision.kind === 'retry') {
      metrics.jobRetried(pool, job.priority);
      const now = clock();
      await dispatchJobs(deps.transport, [stored], now);
      // Not awaited, as in the scheduler: the store lets marks linger to share a statement, and this
      // slot need not wait for that. A lost mark means the reconciler publishes it again (harmless).
      deps.store.markDispatched([job.id], now).catch((e: unknown) => {
        log.warn({ err: e }, 'retry published but not marked dispatched');
      });
      log.warn(
        { err: describeError(error), attempt: job.attempts, delayInMs: decision.delayInMs },
        'job failed: will retry',
      );
      return;
    }
    log.error({ err: describeError(error), attempts: job.attempts }, 'job failed');
    metrics.jobFinished(pool, job.priority, 'failed', ranFor());
    // The failure is recorded; dead-letter the message so operators see it in the pool's dead-letter queue.
    throw new OrchestratorError(
      'HANDLER_FAILED',
      `job ${job.id} failed after ${job.attempts} attempt(s): ${describeError(error)}`,
    );
  }
}

/**
 * Consumes a pool's lanes, high first, and reports this consumer's presence (capacity and jobs in
 * progress) through the job store until it is closed.
 */
export async function startWorker(deps: WorkerDeps, options: WorkerOptions): Promise<Subscription> {
  const concurrency = options.concurrency ?? 4;
  let inFlight = 0;
  const runJob = createRunJob(deps, options);
  const subscription = await consumeLanes<JobMessage>(
    deps.transport,
    lanesOf(options.pool).map((lane) => lane.queue),
    async (message, signal) => {
      inFlight += 1;
      try {
        await runJob(message, signal);
      } finally {
        inFlight -= 1;
      }
    },
    { concurrency, headroom: options.priorityHeadroom ?? 1 },
  );
  const presence = startPresence({
    store: deps.store,
    pool: options.pool,
    ...(options.replicaName !== undefined && { name: options.replicaName }),
    concurrency,
    inFlight: () => inFlight,
    intervalInMs: options.heartbeatIntervalInMs ?? 5_000,
    logger: deps.logger,
  });
  return {
    async close() {
      await subscription.close();
      await presence.stop();
    },
  };
}

/**
 * The heartbeats of every job this worker runs, recorded together: one statement per interval for
 * all of them, not a timer and a statement per job. A job the store no longer has running
 * (cancelled, or taken back by the reconciler) has its controller aborted.
 */
function createHeartbeats(
  deps: Pick<WorkerDeps, 'store' | 'logger'>,
  intervalInMs: number,
  clock: () => Date,
): { add(jobId: string, cancel: AbortController): () => void } {
  const running = new Map<string, AbortController>();
  let timer: NodeJS.Timeout | undefined;
  const beat = async (): Promise<void> => {
    const ids = [...running.keys()];
    if (ids.length === 0) return;
    try {
      for (const id of await deps.store.recordHeartbeat(ids, clock())) {
        running.get(id)?.abort(new OrchestratorError('INVALID_TRANSITION', 'job is no longer running'));
      }
    } catch (e) {
      deps.logger.warn({ err: e, jobs: ids.length }, 'heartbeat failed');
    }
  };
  return {
    add(jobId, cancel) {
      running.set(jobId, cancel);
      timer ??= setInterval(() => void beat(), intervalInMs);
      return () => {
        running.delete(jobId);
        if (running.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
  };
}
