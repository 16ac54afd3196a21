import { z } from 'zod';
import {
  classifierConfig,
  logConfig,
  opsConfig,
  parseConfig,
  priorityConfig,
  reconcilerConfig,
  retryConfig,
  storageConfig,
} from '@orch/platform/runtime';

export const schedulerConfigSchema = logConfig
  .extend(opsConfig.shape)
  .extend(storageConfig.shape)
  .extend(retryConfig.shape)
  .extend(classifierConfig.shape)
  .extend(reconcilerConfig.shape)
  .extend(priorityConfig.shape)
  .extend({
    /** Ingest messages classified at once. */
    SCHEDULER_CONCURRENCY: z.coerce.number().int().positive().default(64),
  });

export type SchedulerConfig = Readonly<z.output<typeof schedulerConfigSchema>>;

export const loadSchedulerConfig = (env: Record<string, string | undefined>): SchedulerConfig =>
  parseConfig(schedulerConfigSchema, env);
