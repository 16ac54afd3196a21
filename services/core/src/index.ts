export { OrchestratorError, isOrchestratorError, describeError } from './errors.ts';
export type { ErrorCode, OrchestratorErrorOptions } from './errors.ts';

export { JOB_STATES, TERMINAL_STATES, PRIORITIES, isTerminal, resultKeyFor } from './job/job.ts';
export type {
  Job,
  JobFailure,
  JobMessage,
  JobState,
  PoolQueue,
  Priority,
  RouteDecision,
  Transition,
} from './job/job.ts';
export {
  MAX_BATCH_SIZE,
  MAX_ESTIMATED_RUNTIME_SEC,
  MAX_ROWS,
  batchSubmissionSchema,
  jobSubmissionSchema,
  newJob,
  parseBatchSubmission,
  parseSubmission,
  toValidationIssues,
} from './job/submission.ts';
export type { JobSubmission, JobSubmissionInput, NewJobOptions, ValidationIssue } from './job/submission.ts';
export { DEFAULT_CLASSIFIER_OPTIONS, classify, estimateCost } from './job/classifier.ts';
export type { ClassifierOptions } from './job/classifier.ts';
export { canTransition, transition } from './job/lifecycle.ts';
export type { TransitionOptions } from './job/lifecycle.ts';
export { DEFAULT_RETRY_POLICY, decideAfterFailure, retryDelayInMs, toJobFailure } from './job/retry-policy.ts';
export type { FailureDecision, RetryPolicy } from './job/retry-policy.ts';

export {
  AKS_POOL_QUEUES,
  BATCH_POOL_QUEUES,
  INGEST_QUEUE,
  INGEST_LANES,
  ingestLaneOf,
  PHYSICAL_QUEUES,
  POOL_QUEUES,
  dispatchClassOf,
  isPoolQueue,
  laneQueue,
  lanesOf,
} from './queues.ts';
export type { DispatchClass } from './queues.ts';

export type {
  ConsumeOptions,
  DeadLetteredMessage,
  MessageHandler,
  OutgoingMessage,
  QueueDepth,
  QueueTransport,
  ReceivedMessage,
  SendOptions,
  Subscription,
} from './ports/queue-transport.ts';
export type {
  IdempotencyRecord,
  JobActivity,
  JobPage,
  JobQuery,
  JobStore,
  RecoveryQuery,
  TenantScope,
  WorkerPresence,
} from './ports/job-store.ts';
export { NO_JOB_METRICS } from './ports/job-metrics.ts';
export type { JobMetrics } from './ports/job-metrics.ts';
export { assertValidBlobKey } from './ports/blob-store.ts';
export type { BlobStore } from './ports/blob-store.ts';
export {
  MAX_INLINE_TASK_SPEC_BYTES,
  TASK_ID_ENV,
  TASK_POOL_ENV,
  TASK_SPEC_ENV,
  batchManifestKey,
  batchPoolOf,
  batchSpecKey,
} from './ports/batch-backend.ts';
export type {
  BatchBackend,
  BatchJobOutcome,
  BatchPool,
  BatchTaskJob,
  BatchTaskManifest,
  BatchTaskSpec,
  BatchTaskState,
} from './ports/batch-backend.ts';

export type { HandlerContext, HandlerInput, HandlerRegistry, JobHandler } from './handlers/handler.ts';
export { createHandlerRegistry } from './handlers/registry.ts';
export { computeSyntheticAggregates, fnv1a32, runSynthetic } from './handlers/synthetic.ts';
export type { SyntheticAggregates } from './handlers/synthetic.ts';

export { consumeLanes } from './dispatch/consume-lanes.ts';
export { activeMessagesOfLanes, sumQueueDepths } from './dispatch/lane-depth.ts';
export { dispatchJobs, messageIdOf, nextQueueOf } from './dispatch/dispatch-jobs.ts';
export type { ConsumeLanesOptions } from './dispatch/consume-lanes.ts';
export { PriorityGate } from './dispatch/priority-gate.ts';
export type { PriorityGateOptions } from './dispatch/priority-gate.ts';
export { createPoolAutoscaler, isScaledPool, POOL_SCALING, recommendReplicas } from './scaling/autoscaler.ts';
export type { PoolAutoscaler, RateLimits, ScalingDecision, ScalingRule } from './scaling/autoscaler.ts';
