import { randomUUID } from 'node:crypto';
import {
  batchManifestKey,
  batchPoolOf,
  batchSpecKey,
  consumeLanes,
  decideAfterFailure,
  DEFAULT_RETRY_POLICY,
  dispatchJobs,
  lanesOf,
  MAX_INLINE_TASK_SPEC_BYTES,
  NO_JOB_METRICS,
  OrchestratorError,
  resultKeyFor,
  transition,
} from '@orch/core';
import type {
  BatchBackend,
  BatchJobOutcome,
  BatchPool,
  BatchTaskManifest,
  BatchTaskSpec,
  BatchTaskState,
  BlobStore,
  Job,
  JobMessage,
  JobMetrics,
  JobStore,
  PoolQueue,
  QueueTransport,
  RetryPolicy,
  Subscription,
} from '@orch/core';
import { createBatcher, startPresence, untilAvailable } from '@orch/platform/runtime';
import type { Batcher, Logger, Presence } from '@orch/platform/runtime';

/** Azure Batch takes at most 100 tasks per add-task-collection call. */
const MAX_TASKS_PER_SUBMISSION = 100;

export interface BatchSubmitterDeps {
  store: JobStore;
  transport: QueueTransport;
  blobs: BlobStore;
  backend: BatchBackend;
  logger: Logger;
  /** @default NO_JOB_METRICS */
  metrics?: JobMetrics;
  clock?: () => Date;
  random?: () => number;
}

export interface BatchSubmitterOptions {
  /** Pools served. @default ['ml-jobs', 'batch-jobs'] */
  pools?: readonly PoolQueue[];
  /** Jobs per batch task (Azure Batch takes at most 100 tasks per call; we put many jobs in one task). @default 100 */
  maxJobsPerTask?: number;
  /** How long the first waiting job waits for others to fill its task. @default 250 */
  lingerInMs?: number;
  /**
   * Messages held per pool lane while their tasks are formed and submitted, in tasks' worth: with a
   * backlog, that many tasks are ready at once and go to Batch in one call. @default 10
   */
  tasksInFlightPerSubmission?: number;
  /** How often running tasks are polled (one list call per pool). @default 1000 */
  pollIntervalInMs?: number;
  retryPolicy?: RetryPolicy;
  /** How long `close` waits for submitted tasks to finish. @default 25000 */
  drainTimeoutInMs?: number;
  /**
   * Tasks the backend runs at once per pool, reported as the pool's capacity on dashboards; 0 when
   * the pool is elastic (Azure Batch autoscale). @default 0
   */
  taskCapacity?: number;
  /** How often this consumer's presence is reported. @default 5000 */
  presenceIntervalInMs?: number;
}

export interface BatchSubmitter {
  /** Stops taking messages, submits what is buffered, waits for running tasks (bounded), then stops polling. */
  close(): Promise<void>;
  /** Tasks submitted and not yet finished. */
  inFlightTasks(): number;
}

/** A message held until its group is submitted: settled then, or handed back if that failed. */
interface Waiting {
  jobId: string;
  done: () => void;
  fail: (error: unknown) => void;
}

interface InFlightTask {
  pool: BatchPool;
  queue: PoolQueue;
  jobIds: string[];
  state: 'pending' | 'running';
}

/**
 * Forwards the ml and batch pools to a batch backend (Azure Batch). Messages are grouped into tasks
 * of up to `maxJobsPerTask` jobs; a group's jobs are marked `running` with the task id, the task is
 * submitted, then the messages are completed. Running tasks are polled; on completion the task's
 * manifest decides each job's outcome, and failures follow the retry policy. While a task runs its
 * jobs' heartbeats are refreshed, so if this process dies the reconciler takes them back.
 */
export async function startBatchSubmitter(
  deps: BatchSubmitterDeps,
  options: BatchSubmitterOptions = {},
): Promise<BatchSubmitter> {
  const clock = deps.clock ?? (() => new Date());
  const metrics = deps.metrics ?? NO_JOB_METRICS;
  const policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const maxJobs = options.maxJobsPerTask ?? 100;
  const lingerInMs = options.lingerInMs ?? 250;
  const pools = options.pools ?? (['ml-jobs', 'batch-jobs'] as const);
  const inFlight = new Map<string, InFlightTask>();
  // Tasks whose groups were formed while an earlier call was on its way go to Batch together: one
  // add-task-collection call for up to 100 of them, not one call per task.
  const submissions = new Map<BatchPool, Batcher<BatchTaskSpec, void>>();
  const submitTask = (pool: BatchPool, task: BatchTaskSpec): Promise<void> => {
    let batcher = submissions.get(pool);
    if (!batcher) {
      batcher = createBatcher<BatchTaskSpec, void>({
        maxBatchSize: MAX_TASKS_PER_SUBMISSION,
        run: async (tasks) => {
          await deps.backend.submitTasks(pool, tasks);
          return tasks.map(() => undefined);
        },
      });
      submissions.set(pool, batcher);
    }
    return batcher.add(task);
  };
  const buffers = new Map<PoolQueue, { waiting: Waiting[]; timer?: NodeJS.Timeout }>();
  const flushes = new Set<Promise<void>>();
  let pollTimer: NodeJS.Timeout | undefined;
  let polling: Promise<void> = Promise.resolve();
  let closed = false;

  const flush = (queue: PoolQueue): void => {
    const buffer = buffers.get(queue);
    if (!buffer || buffer.waiting.length === 0) return;
    clearTimeout(buffer.timer);
    buffer.timer = undefined;
    const group = buffer.waiting.splice(0, maxJobs);
    // A failed submission hands the messages back (redelivered): completing them would leave their
    // jobs `queued` with no message, and nothing would ever run them.
    const work = submitGroup(queue, group)
      .then(
        () => group.forEach((w) => w.done()),
        (e: unknown) => {
          deps.logger.error({ err: e, queue, jobs: group.length }, 'batch submission failed: messages handed back');
          group.forEach((w) => w.fail(e));
        },
      )
      .finally(() => flushes.delete(work));
    flushes.add(work);
  };

  async function submitGroup(queue: PoolQueue, group: Waiting[]): Promise<void> {
    const pool = batchPoolOf(queue);
    if (!pool) throw new TypeError(`${queue} is not a batch pool`);
    const taskId = `${pool}-${randomUUID()}`;
    const now = clock();
    // Store calls wait out a database restart while the messages are held (see untilAvailable).
    const held = <T>(what: string, operation: () => Promise<T>): Promise<T> =>
      untilAvailable(operation, { what: `${what} (task ${taskId})`, logger: deps.logger });
    const jobs = await held('reading the jobs', () => deps.store.getJobs([...new Set(group.map((w) => w.jobId))]));
    // Duplicates, cancelled and finished jobs are skipped. The updates go out together, so the store
    // writes them in one statement.
    const runnable = jobs.filter((job) => job.state === 'queued' || job.state === 'retrying');
    const stored = await Promise.all(
      runnable.map((job) => {
        const next = transition(job, 'running', {
          at: now,
          patch: {
            attempts: job.attempts + 1,
            batchTaskId: taskId,
            heartbeatAt: now.toISOString(),
            nextAttemptAt: null,
          },
        });
        return held('starting a job', () => deps.store.updateJob(next, { ifVersion: job.version }));
      }),
    );
    const started = stored.filter((job): job is Job => job !== undefined);
    for (const job of started) {
      metrics.jobStarted(queue, job.priority, now.getTime() - Date.parse(job.nextAttemptAt ?? job.createdAt));
    }
    if (started.length === 0) return;
    const spec: BatchTaskSpec = {
      id: taskId,
      jobs: started.map((j) => ({
        jobId: j.id,
        type: j.type,
        rows: j.rows,
        estimatedRuntimeSec: j.estimatedRuntimeSec,
        data: j.data,
        attempt: j.attempts,
      })),
    };
    try {
      await submitTask(pool, await claimCheck(spec));
    } catch (e) {
      deps.logger.warn(
        { err: e, taskId, jobs: started.length },
        'task submission failed: jobs go through the retry policy',
      );
      const error = wrapBackendError(e);
      await failJobs(
        started.map((j) => ({ jobId: j.id, error })),
        taskId,
      );
      return;
    }
    inFlight.set(taskId, { pool, queue, jobIds: started.map((j) => j.id), state: 'pending' });
    deps.logger.info({ taskId, pool, jobs: started.length }, 'batch task submitted');
  }

  /** Large specs travel as a blob: the task carries only its key. */
  async function claimCheck(spec: BatchTaskSpec): Promise<BatchTaskSpec> {
    const json = JSON.stringify(spec);
    if (Buffer.byteLength(json) <= MAX_INLINE_TASK_SPEC_BYTES) return spec;
    const specKey = batchSpecKey(spec.id);
    await deps.blobs.uploadBlob(specKey, json, { contentType: 'application/json' });
    return { id: spec.id, jobs: [], specKey };
  }

  async function poll(): Promise<void> {
    const byPool = new Map<BatchPool, string[]>();
    for (const [taskId, task] of inFlight) byPool.set(task.pool, [...(byPool.get(task.pool) ?? []), taskId]);
    for (const [pool, taskIds] of byPool) {
      const states = await deps.backend.getTaskStates(pool, taskIds);
      const stillRunning: string[] = [];
      for (const taskId of taskIds) {
        const state = states.get(taskId) ?? { state: 'unknown' };
        if (state.state === 'pending' || state.state === 'running') {
          const task = inFlight.get(taskId);
          if (task) task.state = state.state;
          stillRunning.push(...(task?.jobIds ?? []));
          continue;
        }
        await finishTask(taskId, state);
      }
      if (stillRunning.length > 0) await deps.store.recordHeartbeat(stillRunning, clock());
    }
    observeTasks();
  }

  const tasksOf = (queue: PoolQueue, state: InFlightTask['state']): number =>
    [...inFlight.values()].filter((t) => t.queue === queue && t.state === state).length;

  function observeTasks(): void {
    for (const queue of pools) {
      metrics.batchTasksObserved(queue, { pending: tasksOf(queue, 'pending'), running: tasksOf(queue, 'running') });
    }
  }

  async function finishTask(taskId: string, state: BatchTaskState): Promise<void> {
    const task = inFlight.get(taskId);
    if (!task) return;
    const manifest = state.state === 'completed' && state.exitCode === 0 ? await readManifest(taskId) : undefined;
    const outcomes = new Map<string, BatchJobOutcome>((manifest?.outcomes ?? []).map((o) => [o.jobId, o]));
    const taskFailure =
      state.state === 'unknown'
        ? 'batch task was lost by the backend'
        : state.state === 'completed' && state.exitCode !== 0
          ? `batch task exited with code ${state.exitCode}${state.failure ? `: ${state.failure}` : ''}`
          : 'batch task wrote no outcome for this job';
    const succeeded: BatchJobOutcome[] = [];
    const failed: { jobId: string; error: unknown }[] = [];
    for (const jobId of task.jobIds) {
      const outcome = outcomes.get(jobId);
      if (outcome?.status === 'succeeded') succeeded.push(outcome);
      else if (outcome?.status === 'failed')
        failed.push({
          jobId,
          error: new OrchestratorError('HANDLER_FAILED', outcome.error.message, { retryable: outcome.retryable }),
        });
      else failed.push({ jobId, error: new OrchestratorError('HANDLER_FAILED', taskFailure, { retryable: true }) });
    }
    await recordSuccesses(taskId, succeeded);
    await failJobs(failed, taskId);
    inFlight.delete(taskId);
    deps.logger.info({ taskId, succeeded: succeeded.length, failed: failed.length }, 'batch task finished');
  }

  async function readManifest(taskId: string): Promise<BatchTaskManifest | undefined> {
    const bytes = await deps.blobs.downloadBlob(batchManifestKey(taskId));
    if (!bytes) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as BatchTaskManifest;
    } catch (e) {
      deps.logger.warn({ err: e, taskId }, 'unreadable task manifest');
      return undefined;
    }
  }

  async function recordSuccesses(taskId: string, outcomes: BatchJobOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const jobs = await deps.store.getJobs(outcomes.map((o) => o.jobId));
    await Promise.all(
      jobs.map(async (job) => {
        if (job.state !== 'running' || job.batchTaskId !== taskId) {
          // Cancelled or taken back while the task ran: it keeps no result from this task.
          if (job.state !== 'succeeded') await deps.blobs.deleteBlob(resultKeyFor(job.id));
          return;
        }
        const done = transition(job, 'succeeded', {
          at: clock(),
          patch: { resultKey: resultKeyFor(job.id), error: null, heartbeatAt: null },
        });
        if (await deps.store.updateJob(done, { ifVersion: job.version })) {
          metrics.jobFinished(queueOf(job), job.priority, 'succeeded', clock().getTime() - Date.parse(job.updatedAt));
        }
      }),
    );
  }

  /** A batch job's pool queue (its decision; the task's pool queue if it somehow has none). */
  function queueOf(job: Job): PoolQueue {
    return job.decision?.queue ?? 'batch-jobs';
  }

  async function failJobs(failures: readonly { jobId: string; error: unknown }[], taskId: string): Promise<void> {
    if (failures.length === 0) return;
    const now = clock();
    const retrying: Job[] = [];
    const errors = new Map(failures.map((f) => [f.jobId, f.error]));
    const jobs = (await deps.store.getJobs([...errors.keys()])).filter(
      (job) => job.state === 'running' && job.batchTaskId === taskId,
    );
    await Promise.all(
      jobs.map(async (job) => {
        const decision = decideAfterFailure(job, errors.get(job.id), { policy, now, random: deps.random });
        const stored = await deps.store.updateJob(decision.job, { ifVersion: job.version });
        if (stored?.state === 'retrying') {
          retrying.push(stored);
          metrics.jobRetried(queueOf(job), job.priority);
        } else if (stored) {
          deps.logger.error({ jobId: job.id, error: stored.error }, 'batch job failed');
          metrics.jobFinished(queueOf(job), job.priority, 'failed', now.getTime() - Date.parse(job.updatedAt));
        }
      }),
    );
    if (retrying.length > 0) {
      await dispatchJobs(deps.transport, retrying, now);
      await deps.store.markDispatched(
        retrying.map((j) => j.id),
        now,
      );
    }
  }

  const schedulePoll = (): void => {
    pollTimer = setTimeout(() => {
      polling = poll()
        .catch((e: unknown) => deps.logger.warn({ err: e }, 'polling batch tasks failed; will try again'))
        .finally(() => {
          if (!closed || inFlight.size > 0) schedulePoll();
        });
    }, options.pollIntervalInMs ?? 1000);
  };

  const subscriptions: Subscription[] = [];
  const presences: Presence[] = [];
  for (const queue of pools) {
    buffers.set(queue, { waiting: [] });
    presences.push(
      startPresence({
        store: deps.store,
        pool: queue,
        name: `batch-submitter-${queue}`,
        concurrency: options.taskCapacity ?? 0,
        inFlight: () => tasksOf(queue, 'running'),
        intervalInMs: options.presenceIntervalInMs ?? 5_000,
        logger: deps.logger,
      }),
    );
    subscriptions.push(
      await consumeLanes<JobMessage>(
        deps.transport,
        lanesOf(queue).map((lane) => lane.queue),
        ({ body }) =>
          new Promise<void>((resolve, reject) => {
            const buffer = buffers.get(queue)!;
            buffer.waiting.push({ jobId: body.jobId, done: resolve, fail: reject });
            if (buffer.waiting.length >= maxJobs) flush(queue);
            else buffer.timer ??= setTimeout(() => flush(queue), lingerInMs);
          }),
        { concurrency: maxJobs * (options.tasksInFlightPerSubmission ?? 10) },
      ),
    );
  }
  schedulePoll();

  return {
    inFlightTasks: () => inFlight.size,
    async close() {
      closed = true;
      // Submit what is buffered so the subscriptions' in-flight handlers can settle.
      for (const queue of pools) while ((buffers.get(queue)?.waiting.length ?? 0) > 0) flush(queue);
      await Promise.all(subscriptions.map((s) => s.close()));
      await Promise.all([...flushes]);
      const deadline = Date.now() + (options.drainTimeoutInMs ?? 25_000);
      while (inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      clearTimeout(pollTimer);
      await polling;
      await Promise.all(presences.map((p) => p.stop()));
      if (inFlight.size > 0)
        deps.logger.warn(
          { tasks: inFlight.size },
          'stopped with batch tasks still running: the reconciler will take their jobs back',
        );
    },
  };
}

function wrapBackendError(e: unknown): OrchestratorError {
  return new OrchestratorError(
    'DEPENDENCY_UNAVAILABLE',
    `batch backend refused the task: ${e instanceof Error ? e.message : String(e)}`,
    {
      retryable: true,
      cause: e,
    },
  );
}
