/**
 * The blob store's own ceiling in local mode: small uploads through the Azure SDK to Azurite (in
 * memory, the most it can do), 64 at a time, as our workers write results. Uploads/s.
 */
import { createAzureBlobStore } from '@orch/platform/azure-blob';
import { startAzurite } from '@orch/platform/test-servers';
import { forEachLimited, seconds } from './lib.ts';

export async function rawAzuriteUploadRate(count: number): Promise<number> {
  const azurite = await startAzurite();
  try {
    const blobs = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container: 'ceiling',
      createContainer: true,
    });
    const body = JSON.stringify({ count: 1000, sum: 499_500_123, min: 3, max: 999_998, mean: 499_500.1 });
    const started = performance.now();
    await forEachLimited(count, 64, (i) =>
      blobs.uploadBlob(`job-${i}/result.json`, body, { contentType: 'application/json' }),
    );
    return count / seconds(started);
  } finally {
    await azurite.close();
  }
}
