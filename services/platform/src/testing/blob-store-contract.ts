import { randomUUID } from 'node:crypto';
import type { BlobStore } from '@orch/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * The behaviour every `BlobStore` must have. Each test writes under its own random prefix, so the
 * store may be shared with other tests and runs; what a test writes it deletes.
 */
export function describeBlobStoreContract(name: string, create: () => Promise<BlobStore>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    let prefix: string;
    let written: string[];
    const key = (name: string): string => {
      const k = `${prefix}/${name}`;
      written.push(k);
      return k;
    };

    beforeEach(async () => {
      store = await create();
      prefix = `test-${randomUUID()}`;
      written = [];
    });
    afterEach(async () => {
      for (const k of written) await store.deleteBlob(k);
      await store.close();
    });

    it('when a string is uploaded, then it downloads as its UTF-8 bytes', async () => {
      const k = key('results/a.json');
      const text = JSON.stringify({ total: 42, name: 'żółw 🐢' });
      await store.uploadBlob(k, text, { contentType: 'application/json' });

      const bytes = await store.downloadBlob(k);

      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(new TextDecoder().decode(bytes)).toBe(text);
    });

    it('when bytes are uploaded, then the same bytes download', async () => {
      const k = key('blob.bin');
      const data = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
      await store.uploadBlob(k, data);

      expect(toHex(await store.downloadBlob(k))).toBe(toHex(data));
    });

    it('when an empty blob is uploaded, then it downloads as zero bytes, not undefined', async () => {
      const k = key('empty');
      await store.uploadBlob(k, new Uint8Array(0));
      expect((await store.downloadBlob(k))?.byteLength).toBe(0);
    });

    it('when a key is uploaded twice, then the second content replaces the first', async () => {
      const k = key('overwrite.txt');
      await store.uploadBlob(k, 'a much longer first version');
      await store.uploadBlob(k, 'second');
      expect(new TextDecoder().decode(await store.downloadBlob(k))).toBe('second');
    });

    it('when the key does not exist, then downloadBlob returns undefined', async () => {
      expect(await store.downloadBlob(key('missing.json'))).toBeUndefined();
      expect(await store.downloadBlob(`${prefix}-missing/deeper/still.json`)).toBeUndefined();
    });

    it('when a blob is deleted, then it is gone, and deleting again succeeds', async () => {
      const k = key('doomed.txt');
      await store.uploadBlob(k, 'x');
      await store.deleteBlob(k);
      expect(await store.downloadBlob(k)).toBeUndefined();
      await expect(store.deleteBlob(k)).resolves.toBeUndefined();
      await expect(store.deleteBlob(key('never-existed.txt'))).resolves.toBeUndefined();
    });

    it('when keys share a prefix, then each keeps its own content', async () => {
      const a = key('dir/a.txt');
      const b = key('dir/sub/b.txt');
      await store.uploadBlob(a, 'A');
      await store.uploadBlob(b, 'B');
      expect(new TextDecoder().decode(await store.downloadBlob(a))).toBe('A');
      expect(new TextDecoder().decode(await store.downloadBlob(b))).toBe('B');
    });

    it('when concurrent uploads race on one key, then the result is one of them whole', async () => {
      const k = key('race.txt');
      const versions = Array.from({ length: 5 }, (_, i) => String(i).repeat(10_000 + i));
      await Promise.all(versions.map((v) => store.uploadBlob(k, v)));
      expect(versions).toContain(new TextDecoder().decode(await store.downloadBlob(k)));
    });

    it.each(['../x', '/abs', 'a//b', 'a/../../b', './a', 'a/', '', 'a\\b'])(
      'when the key is %j, then every operation rejects it',
      async (bad) => {
        await expect(store.uploadBlob(bad, 'x')).rejects.toThrow();
        await expect(store.downloadBlob(bad)).rejects.toThrow();
        await expect(store.deleteBlob(bad)).rejects.toThrow();
      },
    );
  });
}

function toHex(bytes: Uint8Array | undefined): string | undefined {
  return bytes && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
