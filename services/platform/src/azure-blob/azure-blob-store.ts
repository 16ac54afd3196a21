import type { TokenCredential } from '@azure/identity';
import { BlobServiceClient, isRestError, type StorageRetryOptions } from '@azure/storage-blob';
import { OrchestratorError, assertValidBlobKey, isOrchestratorError, type BlobStore } from '@orch/core';
import { NETWORK_ERROR_CODES } from '../shared/network-errors.ts';

export interface AzureBlobStoreOptions {
  /**
   * A storage connection string (shared key or SAS), e.g. Azurite's, or `UseDevelopmentStorage=true`.
   * Give this or `accountUrl`, not both.
   */
  connectionString?: string;
  /** e.g. `https://<account>.blob.core.windows.net`, authenticated with `credential`. */
  accountUrl?: string;
  /** Only with `accountUrl`. @default DefaultAzureCredential */
  credential?: TokenCredential;
  /** The container holding the blobs; a key `a/b.json` is the blob `a/b.json` in it. */
  container: string;
  /**
   * Create the container when it is missing: at startup, and again on upload if it was deleted
   * since. Needs the right to create containers (Storage Blob Data Contributor does). @default false
   */
  createContainer?: boolean;
  /** The SDK's retries of throttled, failed and timed-out requests. @default the SDK's (4 tries, exponential) */
  retryOptions?: Pick<StorageRetryOptions, 'maxTries' | 'retryDelayInMs' | 'maxRetryDelayInMs' | 'tryTimeoutInMs'>;
}

/**
 * A `BlobStore` on Azure Blob Storage (or Azurite). Each upload is one Put Blob request up to the
 * SDK's single-shot limit (256 MiB), which replaces the blob atomically; larger data is staged in
 * blocks and committed in one Put Block List, which readers also see all at once. A download is one
 * GET; if it breaks off, the SDK resumes it only while the blob's ETag is unchanged.
 *
 * Failures: network errors, timeouts, throttling and 5xx (after the SDK's own retries) become a
 * retryable `DEPENDENCY_UNAVAILABLE`; 401/403 (a missing role assignment, a bad key) a non-retryable
 * one, as is a missing container without `createContainer`. Invalid keys throw `TypeError` before any
 * request.
 */
export async function createAzureBlobStore(options: AzureBlobStoreOptions): Promise<BlobStore> {
  const service = await createServiceClient(options);
  const container = service.getContainerClient(options.container);
  const ensureContainer = async (): Promise<void> => {
    await container.createIfNotExists();
  };
  if (options.createContainer) await translated(`create container "${options.container}"`, ensureContainer);

  const blobOf = (key: string) => {
    assertValidBlobKey(key);
    return container.getBlockBlobClient(key);
  };

  return {
    async uploadBlob(key, data, uploadOptions = {}) {
      const blob = blobOf(key);
      const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : toBuffer(data);
      const upload = () =>
        blob.uploadData(body, {
          ...(uploadOptions.contentType !== undefined && {
            blobHTTPHeaders: { blobContentType: uploadOptions.contentType },
          }),
        });
      await translated(`upload "${key}"`, async () => {
        try {
          await upload();
        } catch (e) {
          if (!options.createContainer || errorCodeOf(e) !== 'ContainerNotFound') throw e;
          await ensureContainer();
          await upload();
        }
      });
    },

    async downloadBlob(key) {
      const blob = blobOf(key);
      return translated(`download "${key}"`, async () => {
        try {
          const response = await blob.download(0);
          return await readAll(response.readableStreamBody);
        } catch (e) {
          // BlobNotFound, or ContainerNotFound: nothing stored under that key either way.
          if (statusOf(e) === 404) return undefined;
          throw e;
        }
      });
    },

    async deleteBlob(key) {
      const blob = blobOf(key);
      await translated(`delete "${key}"`, async () => {
        try {
          await blob.delete();
        } catch (e) {
          if (statusOf(e) !== 404) throw e;
        }
      });
    },

    // The SDK's HTTP client keeps no connections that need closing.
    close: () => Promise.resolve(),
  };
}

async function createServiceClient(options: AzureBlobStoreOptions): Promise<BlobServiceClient> {
  const { connectionString, accountUrl, credential, retryOptions } = options;
  const pipelineOptions = retryOptions === undefined ? {} : { retryOptions };
  if (connectionString !== undefined && accountUrl === undefined && credential === undefined) {
    try {
      return BlobServiceClient.fromConnectionString(connectionString, pipelineOptions);
    } catch (e) {
      // Its message says what is wrong with the string without repeating the key.
      throw new OrchestratorError('CONFIG_INVALID', `invalid storage connection string: ${messageOf(e)}`);
    }
  }
  if (accountUrl !== undefined && connectionString === undefined) {
    const tokenCredential = credential ?? new (await import('@azure/identity')).DefaultAzureCredential();
    return new BlobServiceClient(accountUrl, tokenCredential, pipelineOptions);
  }
  throw new OrchestratorError(
    'CONFIG_INVALID',
    'the Azure blob store needs either a connectionString, or an accountUrl (with an optional credential)',
  );
}

/** Runs one store operation, turning SDK failures into `OrchestratorError`s (see `createAzureBlobStore`). */
async function translated<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translateError(e, operation);
  }
}

/** Socket errors that mean "Blob Storage is not reachable right now". */
const NETWORK_CODES: ReadonlySet<string> = new Set([...NETWORK_ERROR_CODES, 'REQUEST_SEND_ERROR']);

function translateError(e: unknown, operation: string): unknown {
  if (isOrchestratorError(e)) return e;
  const status = statusOf(e);
  const unavailable = (retryable: boolean, reason: string) =>
    new OrchestratorError('DEPENDENCY_UNAVAILABLE', `blob storage: ${operation} failed: ${reason}`, {
      retryable,
      cause: e,
    });
  if (status === 401 || status === 403) return unavailable(false, `${status} ${errorCodeOf(e) ?? messageOf(e)}`);
  if (errorCodeOf(e) === 'ContainerNotFound') {
    return unavailable(false, 'the container does not exist (create it, or set createContainer)');
  }
  // 412 only happens when a download resumes after the blob was replaced: a new attempt reads the new one.
  if (status !== undefined && (status >= 500 || status === 408 || status === 429 || status === 412)) {
    return unavailable(true, `${status} ${errorCodeOf(e) ?? messageOf(e)}`);
  }
  const name = e instanceof Error ? e.name : undefined;
  if (
    (status === undefined && isRestError(e)) ||
    NETWORK_CODES.has(codeOf(e) ?? '') ||
    name === 'AbortError' ||
    name === 'AuthenticationError'
  ) {
    return unavailable(true, messageOf(e));
  }
  if (name === 'CredentialUnavailableError') return unavailable(false, messageOf(e));
  return e;
}

function statusOf(e: unknown): number | undefined {
  return isRestError(e) ? e.statusCode : undefined;
}

/** The storage error code (`BlobNotFound`, `ContainerNotFound`, …) of a failed request. */
function errorCodeOf(e: unknown): string | undefined {
  if (!isRestError(e)) return undefined;
  const details = e.details as { errorCode?: unknown } | undefined;
  return typeof details?.errorCode === 'string' ? details.errorCode : e.code;
}

function codeOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  return typeof e.code === 'string' ? e.code : undefined;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

async function readAll(body: NodeJS.ReadableStream | undefined): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  const bytes = Buffer.concat(chunks);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
