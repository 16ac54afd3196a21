export { createFsBlobStore } from './fs-blob-store.ts';
export type { FsBlobStoreOptions } from './fs-blob-store.ts';
