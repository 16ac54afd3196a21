export { createAzureBlobStore } from './azure-blob-store.ts';
export type { AzureBlobStoreOptions } from './azure-blob-store.ts';
