import { z } from 'zod';
import { executionConfig, logConfig, parseConfig, retryConfig, storageConfig } from '@orch/platform/runtime';

export const batchSubmitterConfigSchema = logConfig
  .extend(storageConfig.shape)
  .extend(retryConfig.shape)
  .extend(executionConfig.shape)
  .extend({
    BATCH_MAX_JOBS_PER_TASK: z.coerce.number().int().min(1).max(1000).default(100),
    BATCH_LINGER_MS: z.coerce.number().int().min(0).default(250),
    BATCH_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(1000),
    /** Local batch backend: tasks run at once (child processes). */
    BATCH_MAX_CONCURRENT_TASKS: z.coerce.number().int().positive().default(2),
    /** Jobs a task runs at once. */
    TASK_JOB_CONCURRENCY: z.coerce.number().int().positive().default(4),
  });

export type BatchSubmitterConfig = Readonly<z.output<typeof batchSubmitterConfigSchema>>;

export const loadBatchSubmitterConfig = (env: Record<string, string | undefined>): BatchSubmitterConfig =>
  parseConfig(batchSubmitterConfigSchema, env);
