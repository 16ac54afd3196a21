export { startBatchSubmitter } from './batch-submitter.ts';
export type { BatchSubmitter, BatchSubmitterDeps, BatchSubmitterOptions } from './batch-submitter.ts';
export { batchSubmitterConfigSchema, loadBatchSubmitterConfig } from './config.ts';
export type { BatchSubmitterConfig } from './config.ts';
