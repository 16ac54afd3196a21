/** Result and artifact storage. Keys look like `results/<jobId>.json`; `..` and absolute keys are refused. */
export interface BlobStore {
  /** Creates or replaces the blob, atomically: readers see the old or the new content, never a part. */
  uploadBlob(key: string, data: Uint8Array | string, options?: { contentType?: string }): Promise<void>;
  /** `undefined` when the blob does not exist. */
  downloadBlob(key: string): Promise<Uint8Array | undefined>;
  /** Idempotent. */
  deleteBlob(key: string): Promise<void>;
  close(): Promise<void>;
}

/** Refuses keys that could escape the store's namespace. */
export function assertValidBlobKey(key: string): void {
  const ok =
    key.length > 0 &&
    key.length <= 1024 &&
    !key.startsWith('/') &&
    !key.includes('\\') &&
    !key.includes('\0') &&
    key.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
  if (!ok) throw new TypeError(`invalid blob key: ${JSON.stringify(key)}`);
}
