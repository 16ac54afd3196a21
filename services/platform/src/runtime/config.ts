import { z } from 'zod';
import { DEFAULT_CLASSIFIER_OPTIONS, DEFAULT_RETRY_POLICY, OrchestratorError, POOL_SCALING } from '@orch/core';
import type { ClassifierOptions, RetryPolicy, ScalingRule } from '@orch/core';

/**
 * Configuration fragments shared by the services. Each service's `config.ts` merges the ones it
 * needs; only `main.ts` passes `process.env` in. Every key is documented in `.env.example`.
 */
const int = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const positive = (fallback: number) => z.coerce.number().positive().default(fallback);

export const logConfig = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** json, pretty, or auto (pretty when stdout is a terminal). */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  SHUTDOWN_TIMEOUT_MS: positiveInt(30_000),
});

/** The probe endpoints of services without an HTTP API (scheduler, workers, batch submitter). */
export const opsConfig = z.object({
  OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Kubernetes probes come from the node: set 0.0.0.0 in a cluster. */
  OPS_HOST: z.string().min(1).default('127.0.0.1'),
});

const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * Where blobs live. The mode picks the default adapter: `fs` (under DATA_DIR) in embedded mode,
 * `azure` (Azurite in local mode, Azure Blob Storage in azure mode) otherwise.
 */
export const blobConfig = z.object({
  ORCH_MODE: z.enum(['embedded', 'local', 'azure']).default('embedded'),
  /** Embedded mode keeps its database (PGlite) and blobs under this folder. */
  DATA_DIR: z.string().min(1).default('.data'),
  BLOB_STORE: z.enum(['fs', 'azure']).optional(),
  /** Local mode default: UseDevelopmentStorage=true (Azurite on 127.0.0.1:10000). */
  AZURE_STORAGE_CONNECTION_STRING: z.string().optional(),
  /** e.g. https://<account>.blob.core.windows.net, with DefaultAzureCredential. */
  AZURE_STORAGE_ACCOUNT_URL: z.url().optional(),
  BLOB_CONTAINER: z
    .string()
    .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'a valid container name')
    .default('results'),
});

/** Queues and the job store, on top of the blob settings. */
export const storageConfig = blobConfig.extend({
  QUEUE_TRANSPORT: z.enum(['memory', 'rabbitmq', 'servicebus']).optional(),
  QUEUE_LOCK_DURATION_MS: positiveInt(60_000),
  QUEUE_MAX_DELIVERY_COUNT: positiveInt(10),
  RABBITMQ_URL: z.string().default('amqp://guest:guest@127.0.0.1:5672'),
  /** The management API, for in-flight (unacknowledged) counts in queue depth. Empty = ready counts only. */
  RABBITMQ_MANAGEMENT_URL: z.string().default('http://guest:guest@127.0.0.1:15672'),
  /** Fully qualified, e.g. orch-prod.servicebus.windows.net, with DefaultAzureCredential. */
  SERVICEBUS_NAMESPACE: z.string().optional(),
  SERVICEBUS_CONNECTION_STRING: z.string().optional(),
  /** Where management (depth) requests go; Microsoft's emulator serves them on http://<host>:5300. */
  SERVICEBUS_ADMINISTRATION_ENDPOINT: z.url().optional(),
  /** Management reads behind queue depth (Service Bus, RabbitMQ's management API) are reused this long. */
  QUEUE_DEPTH_CACHE_MS: int(5_000),
  JOB_STORE: z.enum(['pglite', 'postgres']).optional(),
  /** Embedded PostgreSQL's page cache, resident for the process's life (PostgreSQL's syntax: 16MB, 1GB). */
  PGLITE_SHARED_BUFFERS: z
    .string()
    .regex(/^\d+(kB|MB|GB)$/, 'a size such as 16MB')
    .default('16MB'),
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/orchestrator'),
  /** Azure Database for PostgreSQL: the password is an Entra ID token from DefaultAzureCredential. */
  DATABASE_ENTRA_AUTH: flag(false),
  DATABASE_MAX_CONNECTIONS: positiveInt(10),
});

/** Where batch-pool tasks run: child processes (`local`, embedded and local modes) or Azure Batch. */
export const batchBackendConfig = z.object({
  BATCH_BACKEND: z.enum(['local', 'azure']).optional(),
  /** Local backend: tasks run at once (child processes). */
  BATCH_MAX_CONCURRENT_TASKS: positiveInt(2),
  /** Jobs a task runs at once. */
  TASK_JOB_CONCURRENCY: positiveInt(4),
  /** e.g. https://<account>.<region>.batch.azure.com, with DefaultAzureCredential. */
  AZURE_BATCH_ACCOUNT_URL: z.url().optional(),
  AZURE_BATCH_POOL_ML: z.string().min(1).default('ml'),
  AZURE_BATCH_POOL_BATCH: z.string().min(1).default('batch'),
  /** Batch jobs are `<prefix>-ml` and `<prefix>-batch`, created on demand. */
  AZURE_BATCH_JOB_PREFIX: z.string().min(1).default('orch'),
  /** The task's command line, run inside the worker image on the pool's nodes. */
  AZURE_BATCH_TASK_COMMAND: z.string().min(1).default('node /app/services/workers/src/task-runner.ts'),
  /** The worker image the tasks run in (pools with a container configuration). */
  AZURE_BATCH_TASK_IMAGE: z.string().optional(),
  /** Client id of the pools' user-assigned identity, so tasks write results to Blob with it. */
  AZURE_BATCH_TASK_CLIENT_ID: z.string().optional(),
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

/** Consumers of the priority lanes: the scheduler and the AKS pools' workers. */
export const priorityConfig = z.object({
  /**
   * Slots beyond a consumer's concurrency that only high-lane messages (urgent and high jobs) take
   * when every slot is busy, so such a job starts without waiting for a running one to finish.
   * 0 = concurrency is a strict limit.
   */
  PRIORITY_HEADROOM: int(1),
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
 * Local autoscaling (embedded and local modes): the actor and spark pools' replicas follow their
 * queues by KEDA's rule (`POOL_SCALING` in @orch/core, the same targets as the ScaledObjects).
 */
export const autoscaleConfig = z.object({
  AUTOSCALE: flag(true),
  /** KEDA's pollingInterval (15 s in the ScaledObjects; shorter here so it can be watched). */
  AUTOSCALE_POLL_INTERVAL_MS: positiveInt(2_000),
  /** The HPA's scale-down stabilization window (300 s on AKS). */
  AUTOSCALE_SCALE_DOWN_WINDOW_MS: int(30_000),
});

/** The scaling rule of an AKS pool with the local window applied. */
export function toScalingRule(
  pool: 'actor-jobs' | 'spark-jobs',
  config: z.output<typeof autoscaleConfig>,
): ScalingRule {
  return { ...POOL_SCALING[pool], scaleDownStabilizationInMs: config.AUTOSCALE_SCALE_DOWN_WINDOW_MS };
}

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
