export { createLogger } from './logger.ts';
export type { Logger, LoggerOptions } from './logger.ts';
export { startOpsServer } from './ops-server.ts';
export { startAutoscaling } from './autoscaling.ts';
export type { Autoscaling, AutoscalingOptions, ReplicaSet } from './autoscaling.ts';
export { startPresence } from './presence.ts';
export type { Presence, PresenceOptions } from './presence.ts';
export type { OpsServer, OpsServerOptions } from './ops-server.ts';
export { onShutdown } from './shutdown.ts';
export { failpoint } from './failpoints.ts';
export { untilAvailable } from './until-available.ts';
export type { UntilAvailableOptions } from './until-available.ts';
export { createBatcher } from '../shared/batcher.ts';
export type { Batcher, BatcherOptions } from '../shared/batcher.ts';
export type { ShutdownOptions } from './shutdown.ts';
export {
  autoscaleConfig,
  batchBackendConfig,
  blobConfig,
  classifierConfig,
  executionConfig,
  logConfig,
  opsConfig,
  parseConfig,
  priorityConfig,
  reconcilerConfig,
  retryConfig,
  storageConfig,
  toClassifierOptions,
  toRetryPolicy,
  toScalingRule,
} from './config.ts';
