import { classify, consumeLanes, dispatchJobs, DEFAULT_CLASSIFIER_OPTIONS, INGEST_QUEUE, transition } from '@orch/core';
import type { ClassifierOptions, JobMessage, JobStore, MessageHandler, QueueTransport, Subscription } from '@orch/core';
import type { Logger } from '@orch/platform/runtime';

export interface SchedulerDeps {
  store: JobStore;
  transport: QueueTransport;
  logger: Logger;
  clock?: () => Date;
}

export interface SchedulerOptions {
  classifier?: ClassifierOptions;
  /** Messages classified at once. @default 16 */
  concurrency?: number;
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
  return async ({ body }) => {
    let job = await deps.store.getJob(body.jobId);
    if (!job) {
      deps.logger.warn({ jobId: body.jobId }, 'message for an unknown job: dropped');
      return;
    }
    if (job.state === 'submitted') {
      const decision = classify(job, classifier);
      const queued = transition(job, 'queued', { at: clock(), patch: { decision }, note: decision.reason });
      const stored = await deps.store.updateJob(queued, { ifVersion: job.version });
      if (!stored) return; // someone else moved it first (another scheduler, or a cancel)
      job = stored;
      deps.logger.info({ jobId: job.id, queue: decision.queue, cost: decision.cost }, 'job classified');
    }
    if (job.state !== 'queued') return;
    const now = clock();
    await dispatchJobs(deps.transport, [job], now);
    await deps.store.markDispatched([job.id], now);
  };
}

export function startScheduler(deps: SchedulerDeps, options: SchedulerOptions = {}): Promise<Subscription> {
  return consumeLanes(deps.transport, [INGEST_QUEUE], createScheduleHandler(deps, options), {
    concurrency: options.concurrency ?? 16,
  });
}
