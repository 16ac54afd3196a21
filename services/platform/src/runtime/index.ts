export { createLogger } from './logger.ts';
export type { Logger, LoggerOptions } from './logger.ts';
export { onShutdown } from './shutdown.ts';
export type { ShutdownOptions } from './shutdown.ts';
export {
  classifierConfig,
  executionConfig,
  logConfig,
  parseConfig,
  reconcilerConfig,
  retryConfig,
  storageConfig,
  toClassifierOptions,
  toRetryPolicy,
} from './config.ts';
