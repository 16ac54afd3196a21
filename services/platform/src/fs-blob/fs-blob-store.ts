import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { assertValidBlobKey, type BlobStore } from '@orch/core';

export interface FsBlobStoreOptions {
  /** Folder holding the blobs (a key `a/b.json` is the file `<rootDir>/a/b.json`); created as needed. */
  rootDir: string;
}

/**
 * A `BlobStore` on the local file system. Uploads write a temporary file beside the target, flush
 * it, and rename it over the target, so a reader sees the old or the new content, never a part.
 * `contentType` is not kept.
 */
export function createFsBlobStore(options: FsBlobStoreOptions): BlobStore {
  const rootDir = resolve(options.rootDir);
  const pathOf = (key: string): string => {
    assertValidBlobKey(key);
    return join(rootDir, key);
  };

  // Folders known to exist: a busy store writes many blobs into few folders.
  const folders = new Set<string>();

  return {
    async uploadBlob(key, data) {
      const path = pathOf(key);
      const folder = dirname(path);
      if (!folders.has(folder)) {
        await mkdir(folder, { recursive: true });
        if (folders.size < 10_000) folders.add(folder);
      }
      // Same folder, so the rename stays on one file system and is atomic.
      const temp = join(folder, `.${randomUUID()}.tmp`);
      try {
        const file = await open(temp, 'wx').catch(async (e: unknown) => {
          if (!isMissing(e)) throw e;
          // The folder was removed behind our back: make it again.
          folders.delete(folder);
          await mkdir(folder, { recursive: true });
          return open(temp, 'wx');
        });
        try {
          await file.writeFile(data);
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temp, path);
      } catch (e) {
        await rm(temp, { force: true });
        throw e;
      }
    },

    async downloadBlob(key) {
      const path = pathOf(key);
      try {
        const bytes = await readFile(path);
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw e;
      }
    },

    async deleteBlob(key) {
      const path = pathOf(key);
      try {
        await unlink(path);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    },

    close: () => Promise.resolve(),
  };
}

/** No file at that key: nothing there, a file where a folder was expected, or a folder (a key prefix). */
function isMissing(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
