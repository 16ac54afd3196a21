import {
  classify,
  consumeLanes,
  dispatchJobs,
  DEFAULT_CLASSIFIER_OPTIONS,
  INGEST_LANES,
  NO_JOB_METRICS,
  transition,
} from '@orch/core';
import type {
  ClassifierOptions,
  JobMessage,
  JobMetrics,
  JobStore,
  MessageHandler,
  QueueTransport,
  Subscription,
} from '@orch/core';
import { failpoint, untilAvailable } from '@orch/platform/runtime';
import type { Logger } from '@orch/platform/runtime';

export interface SchedulerDeps {
  store: JobStore;
  transport: QueueTransport;
  logger: Logger;
  /** @default NO_JOB_METRICS */
  metrics?: JobMetrics;
  clock?: () => Date;
}

export interface SchedulerOptions {
  classifier?: ClassifierOptions;
  /** Messages classified at once: their store reads and writes and publishes share statements. @default 64 */
  concurrency?: number;
  /** Spare slots for high-lane (urgent and high) submissions when all are busy. @default 1 */
  priorityHeadroom?: number;
}

/**
 * Handles one ingest message: classifies a `submitted` job, records the decision (`queued`), then
 * publishes it to its pool lane. A job found already `queued` is published again: the previous
 * attempt may have died between recording and publishing, and a duplicate is harmless because
 * workers start a job only by a compare-and-set on its state.
 */
export function createScheduleHandler(deps: SchedulerDeps, options: SchedulerOptions = {}): MessageHandler<JobMessage> {
  const clock = deps.clock ?? (() => new Date());
  const classifier = options.classifier ?? DEFAULT_CLASSIFIER_OPTIONS;
  return async ({ body }, signal) => {
    // A database or broker restart is waited out while holding the message (see untilAvailable).
    const held = <T>(what: string, operation: () => Promise<T>): Promise<T> =>
      untilAvailable(operation, { what: `${what} (job ${body.jobId})`, signal, logger: deps.logger });
    let job = await held('reading the job', () => deps.store.getJob(body.jobId));
    if (!job) {
      deps.logger.warn({ jobId: body.jobId }, 'message for an unknown job: dropped');
      return;
    }
    if (job.state === 'submitted') {
      const decision = classify(job, classifier);
      const queued = transition(job, 'queued', { at: clock(), patch: { decision }, note: decision.reason });
      const ifVersion = job.version;
      const stored = await held('recording the decision', () => deps.store.updateJob(queued, { ifVersion }));
      if (!stored) return; // someone else moved it first (another scheduler, or a cancel)
      job = stored;
      deps.logger.info({ jobId: job.id, queue: decision.queue, cost: decision.cost }, 'job classified');
      (deps.metrics ?? NO_JOB_METRICS).jobRouted(decision.queue, job.priority);
      // Fault drills die here: the decision is recorded, its message not yet published.
      failpoint('scheduler.after-decision');
    }
    if (job.state !== 'queued') return;
    const now = clock();
    const toPublish = job;
    await held('publishing', () => dispatchJobs(deps.transport, [toPublish], now));
    // Not awaited: the message is out. A lost mark means the reconciler publishes it again (harmless).
    deps.store.markDispatched([toPublish.id], now).catch((e: unknown) => {
      deps.logger.warn({ err: e, jobId: toPublish.id }, 'published job not marked dispatched');
    });
  };
}

export function startScheduler(deps: SchedulerDeps, options: SchedulerOptions = {}): Promise<Subscription> {
  return consumeLanes(
    deps.transport,
    INGEST_LANES.map((lane) => lane.queue),
    createScheduleHandler(deps, options),
    { concurrency: options.concurrency ?? 64, headroom: options.priorityHeadroom ?? 1 },
  );
}
