import { z } from 'zod';
import {
  batchBackendConfig,
  executionConfig,
  logConfig,
  opsConfig,
  parseConfig,
  retryConfig,
  storageConfig,
} from '@orch/platform/runtime';

export const batchSubmitterConfigSchema = logConfig
  .extend(opsConfig.shape)
  .extend(storageConfig.shape)
  .extend(retryConfig.shape)
  .extend(executionConfig.shape)
  .extend(batchBackendConfig.shape)
  .extend({
    BATCH_MAX_JOBS_PER_TASK: z.coerce.number().int().min(1).max(1000).default(100),
    BATCH_LINGER_MS: z.coerce.number().int().min(0).default(250),
    BATCH_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
  });

export type BatchSubmitterConfig = Readonly<z.output<typeof batchSubmitterConfigSchema>>;

export const loadBatchSubmitterConfig = (env: Record<string, string | undefined>): BatchSubmitterConfig =>
  parseConfig(batchSubmitterConfigSchema, env);
