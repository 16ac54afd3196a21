import path from 'node:path';
import { OrchestratorError } from '@orch/core';
import type { BatchBackend, BlobStore, JobStore, QueueTransport } from '@orch/core';
import type { Logger } from 'pino';

/**
 * Chooses adapters from configuration. Adapters are loaded with dynamic `import()` so that a
 * service pulls in only the SDKs of the mode it runs in.
 */
export interface StorageSettings {
  DATA_DIR: string;
  QUEUE_TRANSPORT: 'memory';
  QUEUE_LOCK_DURATION_MS: number;
  QUEUE_MAX_DELIVERY_COUNT: number;
}

/** Where embedded mode keeps its state under DATA_DIR. */
export function embeddedPaths(dataDir: string): { database: string; blobs: string } {
  const root = path.resolve(dataDir);
  return { database: path.join(root, 'pg'), blobs: path.join(root, 'blobs') };
}

export async function createTransport(settings: StorageSettings): Promise<QueueTransport> {
  switch (settings.QUEUE_TRANSPORT) {
    case 'memory': {
      const { createMemoryTransport } = await import('../memory/index.ts');
      return createMemoryTransport({
        lockDurationInMs: settings.QUEUE_LOCK_DURATION_MS,
        maxDeliveryCount: settings.QUEUE_MAX_DELIVERY_COUNT,
      });
    }
  }
}

export async function createJobStore(settings: StorageSettings, logger: Logger): Promise<JobStore> {
  const { createPgliteJobStore } = await import('../postgres/index.ts');
  return createPgliteJobStore({ dataDir: embeddedPaths(settings.DATA_DIR).database, logger });
}

export async function createBlobStore(settings: Pick<StorageSettings, 'DATA_DIR'>): Promise<BlobStore> {
  const { createFsBlobStore } = await import('../fs-blob/index.ts');
  return createFsBlobStore({ rootDir: embeddedPaths(settings.DATA_DIR).blobs });
}

/** The in-process transport and embedded database live inside one process: standalone services cannot share them. */
export function assertStandaloneCapable(settings: StorageSettings, service: string): void {
  if (settings.QUEUE_TRANSPORT === 'memory') {
    throw new OrchestratorError(
      'CONFIG_INVALID',
      `the ${service} service cannot run alone with QUEUE_TRANSPORT=memory: the in-process transport and the embedded ` +
        'database exist only inside the all-in-one process (npm start). Networked transports come with local and azure modes.',
    );
  }
}

export interface BatchSettings {
  DATA_DIR: string;
  LOG_LEVEL: string;
  BATCH_MAX_CONCURRENT_TASKS: number;
  TASK_JOB_CONCURRENCY: number;
  JOB_TIMEOUT_MS: number;
  SIMULATED_DURATION_FACTOR: number;
  /** The task runner's entry file; the local backend runs it with this Node binary. */
  TASK_RUNNER_PATH?: string;
}

const DEFAULT_TASK_RUNNER = 'services/workers/src/task-runner.ts';

/** The local batch backend: each task is a child process running the workers' task runner. */
export async function createBatchBackend(settings: BatchSettings, logger: Logger): Promise<BatchBackend> {
  const { createLocalBatchBackend } = await import('../local-batch/index.ts');
  return createLocalBatchBackend({
    command: [process.execPath, path.resolve(settings.TASK_RUNNER_PATH ?? DEFAULT_TASK_RUNNER)],
    env: {
      DATA_DIR: path.resolve(settings.DATA_DIR),
      LOG_LEVEL: settings.LOG_LEVEL,
      TASK_JOB_CONCURRENCY: String(settings.TASK_JOB_CONCURRENCY),
      JOB_TIMEOUT_MS: String(settings.JOB_TIMEOUT_MS),
      SIMULATED_DURATION_FACTOR: String(settings.SIMULATED_DURATION_FACTOR),
    },
    maxConcurrentTasks: settings.BATCH_MAX_CONCURRENT_TASKS,
    logger,
  });
}
