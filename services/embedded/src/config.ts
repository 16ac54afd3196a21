import { z } from 'zod';
import { apiConfigSchema } from '@orch/api';
import { batchSubmitterConfigSchema } from '@orch/batch-submitter';
import { autoscaleConfig, parseConfig } from '@orch/platform/runtime';
import { schedulerConfigSchema } from '@orch/scheduler';

const concurrency = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Everything the services read, plus the per-pool concurrency of the in-process workers. */
export const embeddedConfigSchema = schedulerConfigSchema
  .extend(batchSubmitterConfigSchema.shape)
  .extend(apiConfigSchema.shape)
  .extend(autoscaleConfig.shape)
  .extend({
    /**
     * Ingest messages classified at once. Lower than the scheduler service's 64: here every
     * statement shares one database connection, so more messages in flight only lengthen the
     * line an urgent job's reads and writes wait in, without making the drain faster.
     */
    SCHEDULER_CONCURRENCY: concurrency(16),
    /** Jobs one actor replica runs at once (the whole pool's when AUTOSCALE is off). */
    ACTOR_CONCURRENCY: concurrency(8),
    /** Jobs one spark replica runs at once (the whole pool's when AUTOSCALE is off). */
    SPARK_CONCURRENCY: concurrency(2),
  });

export type EmbeddedConfig = Readonly<z.output<typeof embeddedConfigSchema>>;

export const loadEmbeddedConfig = (env: Record<string, string | undefined>): EmbeddedConfig =>
  parseConfig(embeddedConfigSchema, env);
