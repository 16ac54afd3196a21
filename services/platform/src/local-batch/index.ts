export { createLocalBatchBackend } from './local-batch-backend.ts';
export type { LocalBatchBackendOptions } from './local-batch-backend.ts';
