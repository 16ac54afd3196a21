import path from 'node:path';
import { OrchestratorError } from '@orch/core';
import type { BatchBackend, BlobStore, JobStore, QueueTransport } from '@orch/core';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { batchBackendConfig, blobConfig, executionConfig, logConfig, storageConfig } from '../runtime/config.ts';

/**
 * Chooses adapters from configuration: `ORCH_MODE` picks a default for each port, and each can be
 * overridden on its own (`QUEUE_TRANSPORT`, `JOB_STORE`, `BLOB_STORE`, `BATCH_BACKEND`). Adapters are
 * loaded with dynamic `import()`, so a service pulls in only the SDKs of the mode it runs in.
 *
 * | port      | embedded | local            | azure                       |
 * |-----------|----------|------------------|-----------------------------|
 * | transport | memory   | rabbitmq         | servicebus                  |
 * | job store | pglite   | postgres         | postgres (Entra ID token)   |
 * | blobs     | fs       | azure (Azurite)  | azure                       |
 * | batch     | local    | local            | azure                       |
 */
export type BlobSettings = z.output<typeof blobConfig>;
export type StorageSettings = z.output<typeof storageConfig>;
export type BatchSettings = BlobSettings &
  z.output<typeof batchBackendConfig> &
  z.output<typeof executionConfig> &
  Pick<z.output<typeof logConfig>, 'LOG_LEVEL'> & {
    /** The task runner's entry file; the local backend runs it with this Node binary. */
    TASK_RUNNER_PATH?: string;
  };

export interface Adapters {
  transport: 'memory' | 'rabbitmq' | 'servicebus';
  jobStore: 'pglite' | 'postgres';
  blobStore: 'fs' | 'azure';
  batchBackend: 'local' | 'azure';
}

const DEFAULTS: Record<BlobSettings['ORCH_MODE'], Adapters> = {
  embedded: { transport: 'memory', jobStore: 'pglite', blobStore: 'fs', batchBackend: 'local' },
  local: { transport: 'rabbitmq', jobStore: 'postgres', blobStore: 'azure', batchBackend: 'local' },
  azure: { transport: 'servicebus', jobStore: 'postgres', blobStore: 'azure', batchBackend: 'azure' },
};

/** The adapter chosen for each port, from the mode's defaults and the explicit overrides. */
export function adaptersOf(
  settings: Pick<BlobSettings, 'ORCH_MODE' | 'BLOB_STORE'> &
    Partial<Pick<StorageSettings, 'QUEUE_TRANSPORT' | 'JOB_STORE'>> &
    Partial<Pick<BatchSettings, 'BATCH_BACKEND'>>,
): Adapters {
  const defaults = DEFAULTS[settings.ORCH_MODE];
  return {
    transport: settings.QUEUE_TRANSPORT ?? defaults.transport,
    jobStore: settings.JOB_STORE ?? defaults.jobStore,
    blobStore: settings.BLOB_STORE ?? defaults.blobStore,
    batchBackend: settings.BATCH_BACKEND ?? defaults.batchBackend,
  };
}

/** Where embedded mode keeps its state under DATA_DIR. */
export function embeddedPaths(dataDir: string): { database: string; blobs: string; azurite: string } {
  const root = path.resolve(dataDir);
  return { database: path.join(root, 'pg'), blobs: path.join(root, 'blobs'), azurite: path.join(root, 'azurite') };
}

export async function createTransport(settings: StorageSettings, logger?: Logger): Promise<QueueTransport> {
  switch (adaptersOf(settings).transport) {
    case 'memory': {
      const { createMemoryTransport } = await import('../memory/index.ts');
      return createMemoryTransport({
        lockDurationInMs: settings.QUEUE_LOCK_DURATION_MS,
        maxDeliveryCount: settings.QUEUE_MAX_DELIVERY_COUNT,
      });
    }
    case 'rabbitmq': {
      const { createRabbitMqTransport } = await import('../rabbitmq/index.ts');
      return createRabbitMqTransport({
        url: settings.RABBITMQ_URL,
        ...(settings.RABBITMQ_MANAGEMENT_URL && { managementUrl: settings.RABBITMQ_MANAGEMENT_URL }),
        lockDurationInMs: settings.QUEUE_LOCK_DURATION_MS,
        maxDeliveryCount: settings.QUEUE_MAX_DELIVERY_COUNT,
        depthCacheTtlInMs: settings.QUEUE_DEPTH_CACHE_MS,
        ...(logger && { logger: logger.child({ component: 'rabbitmq' }) }),
      });
    }
    case 'servicebus': {
      const { createServiceBusTransport } = await import('../service-bus/index.ts');
      const target = settings.SERVICEBUS_CONNECTION_STRING
        ? { connectionString: settings.SERVICEBUS_CONNECTION_STRING }
        : { fullyQualifiedNamespace: required(settings.SERVICEBUS_NAMESPACE, 'SERVICEBUS_NAMESPACE', 'servicebus') };
      return createServiceBusTransport({
        ...target,
        depthCacheTtlInMs: settings.QUEUE_DEPTH_CACHE_MS,
        ...(settings.SERVICEBUS_ADMINISTRATION_ENDPOINT && {
          administrationEndpoint: settings.SERVICEBUS_ADMINISTRATION_ENDPOINT,
        }),
        ...(logger && { logger: logger.child({ component: 'service-bus' }) }),
      });
    }
  }
}

export async function createJobStore(settings: StorageSettings, logger: Logger): Promise<JobStore> {
  switch (adaptersOf(settings).jobStore) {
    case 'pglite': {
      const { createPgliteJobStore } = await import('../postgres/index.ts');
      return createPgliteJobStore({
        dataDir: embeddedPaths(settings.DATA_DIR).database,
        sharedBuffers: settings.PGLITE_SHARED_BUFFERS,
        logger,
      });
    }
    case 'postgres': {
      const { createPgServerJobStore } = await import('../postgres/index.ts');
      const azureCredential = settings.DATABASE_ENTRA_AUTH ? await defaultAzureCredential() : undefined;
      return createPgServerJobStore({
        connectionString: settings.DATABASE_URL,
        maxConnections: settings.DATABASE_MAX_CONNECTIONS,
        ...(azureCredential && { azureCredential }),
        logger,
      });
    }
  }
}

export async function createBlobStore(settings: BlobSettings): Promise<BlobStore> {
  switch (adaptersOf(settings).blobStore) {
    case 'fs': {
      const { createFsBlobStore } = await import('../fs-blob/index.ts');
      return createFsBlobStore({ rootDir: embeddedPaths(settings.DATA_DIR).blobs });
    }
    case 'azure': {
      const { createAzureBlobStore } = await import('../azure-blob/index.ts');
      return createAzureBlobStore({
        ...blobTarget(settings),
        container: settings.BLOB_CONTAINER,
        createContainer: true,
      });
    }
  }
}

/** Account URL with DefaultAzureCredential first; a connection string for local use (Azurite by default). */
function blobTarget(settings: BlobSettings): { connectionString: string } | { accountUrl: string } {
  if (settings.AZURE_STORAGE_ACCOUNT_URL) return { accountUrl: settings.AZURE_STORAGE_ACCOUNT_URL };
  if (settings.AZURE_STORAGE_CONNECTION_STRING) return { connectionString: settings.AZURE_STORAGE_CONNECTION_STRING };
  if (settings.ORCH_MODE === 'azure') required(undefined, 'AZURE_STORAGE_ACCOUNT_URL', 'azure blob');
  return { connectionString: 'UseDevelopmentStorage=true' };
}

/** The blob settings a batch task needs to write its results where the services read them. */
export function blobEnvironment(settings: BlobSettings): Record<string, string> {
  const env: Record<string, string> = {
    ORCH_MODE: settings.ORCH_MODE,
    BLOB_STORE: adaptersOf(settings).blobStore,
    BLOB_CONTAINER: settings.BLOB_CONTAINER,
    DATA_DIR: path.resolve(settings.DATA_DIR),
  };
  if (settings.AZURE_STORAGE_CONNECTION_STRING)
    env.AZURE_STORAGE_CONNECTION_STRING = settings.AZURE_STORAGE_CONNECTION_STRING;
  if (settings.AZURE_STORAGE_ACCOUNT_URL) env.AZURE_STORAGE_ACCOUNT_URL = settings.AZURE_STORAGE_ACCOUNT_URL;
  return env;
}

/**
 * The in-process transport and the embedded database live inside one process: services running as
 * separate processes cannot share them.
 */
export function assertStandaloneCapable(settings: StorageSettings, service: string): void {
  const adapters = adaptersOf(settings);
  if (adapters.transport === 'memory' || adapters.jobStore === 'pglite') {
    throw new OrchestratorError(
      'CONFIG_INVALID',
      `the ${service} service cannot run alone with ${adapters.transport === 'memory' ? 'QUEUE_TRANSPORT=memory' : 'JOB_STORE=pglite'}: ` +
        'the in-process transport and the embedded database exist only inside the all-in-one process (npm start). ' +
        'Set ORCH_MODE=local (RabbitMQ, PostgreSQL, Azurite) or ORCH_MODE=azure.',
    );
  }
}

const DEFAULT_TASK_RUNNER = 'services/workers/src/task-runner.ts';

/** Child processes running the workers' task runner (local), or Azure Batch tasks in the worker image. */
export async function createBatchBackend(settings: BatchSettings, logger: Logger): Promise<BatchBackend> {
  const taskEnvironment: Record<string, string> = {
    ...blobEnvironment(settings),
    LOG_LEVEL: settings.LOG_LEVEL,
    TASK_JOB_CONCURRENCY: String(settings.TASK_JOB_CONCURRENCY),
    JOB_TIMEOUT_MS: String(settings.JOB_TIMEOUT_MS),
    SIMULATED_DURATION_FACTOR: String(settings.SIMULATED_DURATION_FACTOR),
  };
  switch (adaptersOf(settings).batchBackend) {
    case 'local': {
      const { createLocalBatchBackend } = await import('../local-batch/index.ts');
      return createLocalBatchBackend({
        command: [process.execPath, path.resolve(settings.TASK_RUNNER_PATH ?? DEFAULT_TASK_RUNNER)],
        env: taskEnvironment,
        maxConcurrentTasks: settings.BATCH_MAX_CONCURRENT_TASKS,
        logger,
      });
    }
    case 'azure': {
      const { createAzureBatchBackend } = await import('../azure-batch/index.ts');
      // Batch nodes have no DATA_DIR of ours: results go to Blob Storage.
      const remoteEnvironment = Object.fromEntries(
        Object.entries(taskEnvironment).filter(([key]) => key !== 'DATA_DIR'),
      );
      return createAzureBatchBackend({
        accountUrl: required(settings.AZURE_BATCH_ACCOUNT_URL, 'AZURE_BATCH_ACCOUNT_URL', 'azure batch'),
        poolIds: { ml: settings.AZURE_BATCH_POOL_ML, batch: settings.AZURE_BATCH_POOL_BATCH },
        jobIdPrefix: settings.AZURE_BATCH_JOB_PREFIX,
        taskCommandLine: settings.AZURE_BATCH_TASK_COMMAND,
        ...(settings.AZURE_BATCH_TASK_IMAGE && { containerImage: settings.AZURE_BATCH_TASK_IMAGE }),
        taskEnvironment: {
          ...remoteEnvironment,
          ...(settings.AZURE_BATCH_TASK_CLIENT_ID && { AZURE_CLIENT_ID: settings.AZURE_BATCH_TASK_CLIENT_ID }),
        },
        logger: logger.child({ component: 'azure-batch' }),
      });
    }
  }
}

async function defaultAzureCredential() {
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential();
}

function required(value: string | undefined, key: string, adapter: string): string {
  if (value) return value;
  throw new OrchestratorError('CONFIG_INVALID', `${key} is required for the ${adapter} adapter`);
}
