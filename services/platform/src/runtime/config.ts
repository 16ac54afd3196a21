import { z } from 'zod';
import { DEFAULT_CLASSIFIER_OPTIONS, DEFAULT_RETRY_POLICY, OrchestratorError } from '@orch/core';
import type { ClassifierOptions, RetryPolicy } from '@orch/core';

/**
 * Configuration fragments shared by the services. Each service's `config.ts` merges the ones it
 * needs; only `main.ts` passes `process.env` in. Every key is documented in `.env.example`.
 */
const int = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const positive = (fallback: number) => z.coerce.number().positive().default(fallback);

export const logConfig = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: positiveInt(30_000),
});

export const storageConfig = z.object({
  /** Embedded mode keeps its database (PGlite) and blobs under this folder. */
  DATA_DIR: z.string().min(1).default('.data'),
  QUEUE_TRANSPORT: z.enum(['memory']).default('memory'),
  QUEUE_LOCK_DURATION_MS: positiveInt(60_000),
  QUEUE_MAX_DELIVERY_COUNT: positiveInt(10),
});

export const retryConfig = z.object({
  JOB_MAX_ATTEMPTS: positiveInt(DEFAULT_RETRY_POLICY.maxAttempts),
  RETRY_BASE_DELAY_MS: int(DEFAULT_RETRY_POLICY.baseDelayInMs),
  RETRY_MAX_DELAY_MS: int(DEFAULT_RETRY_POLICY.maxDelayInMs),
  RETRY_JITTER: z.coerce.number().min(0).max(1).default(DEFAULT_RETRY_POLICY.jitter),
});

export const executionConfig = z.object({
  JOB_TIMEOUT_MS: positiveInt(300_000),
  HEARTBEAT_INTERVAL_MS: positiveInt(5_000),
  /** Simulated duration of a synthetic job = estimated_runtime_sec × this factor. */
  SIMULATED_DURATION_FACTOR: z.coerce.number().min(0).max(1).default(0.05),
});

export const classifierConfig = z.object({
  CLASSIFIER_ROWS_DIVISOR: positive(DEFAULT_CLASSIFIER_OPTIONS.rowsDivisor),
  CLASSIFIER_RUNTIME_DIVISOR: positive(DEFAULT_CLASSIFIER_OPTIONS.runtimeDivisor),
  CLASSIFIER_SPARK_THRESHOLD: z.coerce.number().default(DEFAULT_CLASSIFIER_OPTIONS.sparkThreshold),
  CLASSIFIER_ML_THRESHOLD: z.coerce.number().default(DEFAULT_CLASSIFIER_OPTIONS.mlThreshold),
  CLASSIFIER_MULTIPLIER_LOW: positive(DEFAULT_CLASSIFIER_OPTIONS.priorityMultipliers.low),
  CLASSIFIER_MULTIPLIER_NORMAL: positive(DEFAULT_CLASSIFIER_OPTIONS.priorityMultipliers.normal),
  CLASSIFIER_MULTIPLIER_HIGH: positive(DEFAULT_CLASSIFIER_OPTIONS.priorityMultipliers.high),
  CLASSIFIER_MULTIPLIER_URGENT: positive(DEFAULT_CLASSIFIER_OPTIONS.priorityMultipliers.urgent),
});

export const reconcilerConfig = z.object({
  RECONCILE_INTERVAL_MS: positiveInt(10_000),
  /** A job without a confirmed message for this long is dispatched again. */
  DISPATCH_GRACE_MS: positiveInt(30_000),
  /** A running job whose heartbeat is older than this is taken back and retried. */
  HEARTBEAT_TIMEOUT_MS: positiveInt(30_000),
});

/**
 * Parses `env` with `schema`, or throws `CONFIG_INVALID` naming every bad key. Empty strings count
 * as unset, so a blank line in `.env` means "use the default".
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): Readonly<z.output<S>> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new OrchestratorError('CONFIG_INVALID', `invalid configuration: ${issues.join('; ')}`, { details: issues });
  }
  return Object.freeze(result.data);
}

export function toRetryPolicy(config: z.output<typeof retryConfig>): RetryPolicy {
  return {
    maxAttempts: config.JOB_MAX_ATTEMPTS,
    baseDelayInMs: config.RETRY_BASE_DELAY_MS,
    maxDelayInMs: config.RETRY_MAX_DELAY_MS,
    jitter: config.RETRY_JITTER,
  };
}

export function toClassifierOptions(config: z.output<typeof classifierConfig>): ClassifierOptions {
  return {
    rowsDivisor: config.CLASSIFIER_ROWS_DIVISOR,
    runtimeDivisor: config.CLASSIFIER_RUNTIME_DIVISOR,
    sparkThreshold: config.CLASSIFIER_SPARK_THRESHOLD,
    mlThreshold: config.CLASSIFIER_ML_THRESHOLD,
    priorityMultipliers: {
      low: config.CLASSIFIER_MULTIPLIER_LOW,
      normal: config.CLASSIFIER_MULTIPLIER_NORMAL,
      high: config.CLASSIFIER_MULTIPLIER_HIGH,
      urgent: config.CLASSIFIER_MULTIPLIER_URGENT,
    },
  };
}
