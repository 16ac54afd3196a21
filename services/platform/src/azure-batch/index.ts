export {
  BatchTokenCredentials,
  collections,
  createAzureBatchBackend,
  MAX_COLLECTION_BYTES,
  MAX_TASKS_PER_COLLECTION,
} from './azure-batch-backend.ts';
export type { AzureBatchBackendOptions } from './azure-batch-backend.ts';
