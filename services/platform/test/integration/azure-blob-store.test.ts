import { randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureBlobStore } from '../../src/azure-blob/index.ts';
import { startAzurite, type RunningAzurite } from '../../src/test-servers/index.ts';
import { describeBlobStoreContract, freePort } from '../../src/testing/index.ts';

// One in-memory Azurite on a free port for the whole file; each test uses its own keys or container.
let azurite: RunningAzurite;
let service: BlobServiceClient;
beforeAll(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
});
afterAll(async () => {
  await azurite?.close();
});

const uniqueContainer = (): string => `test-${randomUUID()}`;

describeBlobStoreContract('Azure Blob Storage (Azurite)', () =>
  createAzureBlobStore({ connectionString: azurite.connectionString, container: 'contract', createContainer: true }),
);

describe('createAzureBlobStore', () => {
  it('given a missing container and createContainer, when the store is created, then the container exists and uploads land in it', async () => {
    const container = uniqueContainer();
    expect(await service.getContainerClient(container).exists()).toBe(false);

    const store = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container,
      createContainer: true,
    });
    await store.uploadBlob('results/job-1.json', '{"ok":true}');

    const names: string[] = [];
    for await (const blob of service.getContainerClient(container).listBlobsFlat()) names.push(blob.name);
    expect(names).toStrictEqual(['results/job-1.json']);
    await service.getContainerClient(container).delete();
  });

  it('given createContainer and a container deleted after startup, when a blob is uploaded, then the container is created again', async () => {
    const container = uniqueContainer();
    const store = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container,
      createContainer: true,
    });
    await service.getContainerClient(container).delete();

    await store.uploadBlob('a.txt', 'again');

    expect(new TextDecoder().decode(await store.downloadBlob('a.txt'))).toBe('again');
    await service.getContainerClient(container).delete();
  });

  it('given a missing container without createContainer, when used, then reads are empty, deletes succeed and uploads fail', async () => {
    const store = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container: uniqueContainer(),
    });

    expect(await store.downloadBlob('a.txt')).toBeUndefined();
    await expect(store.deleteBlob('a.txt')).resolves.toBeUndefined();
    await expect(store.uploadBlob('a.txt', 'x')).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: false,
    });
  });

  it('given a contentType, when a blob is uploaded, then the blob carries that content type', async () => {
    const container = uniqueContainer();
    const store = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container,
      createContainer: true,
    });

    await store.uploadBlob('results/typed.json', '{}', { contentType: 'application/json' });

    const properties = await service.getContainerClient(container).getBlobClient('results/typed.json').getProperties();
    expect(properties.contentType).toBe('application/json');
    await service.getContainerClient(container).delete();
  });

  it('given a 5 MB blob, when it is uploaded and downloaded, then the same bytes come back', async () => {
    const store = await createAzureBlobStore({
      connectionString: azurite.connectionString,
      container: 'contract',
      createContainer: true,
    });
    const key = `large-${randomUUID()}/blob.bin`;
    const data = new Uint8Array(5 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 12)) % 256);

    await store.uploadBlob(key, data);
    const read = await store.downloadBlob(key);

    expect(read?.byteLength).toBe(data.byteLength);
    expect(Buffer.compare(Buffer.from(read ?? []), Buffer.from(data))).toBe(0);
    await store.deleteBlob(key);
  });

  it('given nothing listens at the endpoint, when a blob is read, then it fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    const port = await freePort();
    const connectionString = azurite.connectionString.replace(
      /BlobEndpoint=[^;]+/,
      `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`,
    );
    const store = await createAzureBlobStore({ connectionString, container: 'any', retryOptions: { maxTries: 1 } });

    await expect(store.downloadBlob('a.txt')).rejects.toMatchObject({
      name: 'OrchestratorError',
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: true,
    });
  });

  it('given neither a connection string nor an account URL, when the store is created, then it fails with CONFIG_INVALID', async () => {
    await expect(createAzureBlobStore({ container: 'x' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(
      createAzureBlobStore({
        container: 'x',
        connectionString: azurite.connectionString,
        accountUrl: 'https://a.blob.core.windows.net',
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
