import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsBlobStore } from '../../src/fs-blob/index.ts';
import { describeBlobStoreContract } from '../../src/testing/index.ts';

let rootDir: string;
beforeAll(async () => {
  rootDir = await mkdtemp(join(tmpdir(), 'orch-blobs-'));
});
afterAll(async () => {
  await rm(rootDir, { recursive: true, force: true });
});

describeBlobStoreContract('file system', () =>
  Promise.resolve(createFsBlobStore({ rootDir: join(rootDir, 'contract') })),
);

describe('createFsBlobStore', () => {
  it('when a blob is uploaded, then it is a file under rootDir and no temporary file is left', async () => {
    const store = createFsBlobStore({ rootDir: join(rootDir, 'layout') });
    await store.uploadBlob('results/job-1.json', '{}');
    await store.uploadBlob('results/job-1.json', '{"v":2}');

    expect(await readdir(join(rootDir, 'layout', 'results'))).toStrictEqual(['job-1.json']);
  });

  it('when a key names a folder, or goes through a file, then it reads as missing and deletes as a no-op', async () => {
    const store = createFsBlobStore({ rootDir: join(rootDir, 'shapes') });
    await store.uploadBlob('a/b.txt', 'x');

    expect(await store.downloadBlob('a')).toBeUndefined();
    expect(await store.downloadBlob('a/b.txt/c')).toBeUndefined();
    await expect(store.deleteBlob('a')).resolves.toBeUndefined();
    await expect(store.deleteBlob('a/b.txt/c')).resolves.toBeUndefined();
  });
});
