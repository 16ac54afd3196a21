import { z } from 'zod';
import {
  executionConfig,
  logConfig,
  opsConfig,
  parseConfig,
  priorityConfig,
  retryConfig,
  storageConfig,
} from '@orch/platform/runtime';

export const workerConfigSchema = logConfig
  .extend(opsConfig.shape)
  .extend(storageConfig.shape)
  .extend(retryConfig.shape)
  .extend(executionConfig.shape)
  .extend(priorityConfig.shape)
  .extend({
    /** Which AKS pool this worker process serves. */
    WORKER_POOL: z.enum(['actor', 'spark']),
    /** Jobs run at once by this process. */
    WORKER_CONCURRENCY: z.coerce.number().int().positive().default(4),
  });

export type WorkerConfig = Readonly<z.output<typeof workerConfigSchema>>;

export const loadWorkerConfig = (env: Record<string, string | undefined>): WorkerConfig =>
  parseConfig(workerConfigSchema, env);
