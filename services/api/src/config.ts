import { z } from 'zod';
import { logConfig, parseConfig, retryConfig, storageConfig } from '@orch/platform/runtime';

/**
 * The API's environment. Shared keys reuse the platform's definitions, so an all-in-one entrypoint
 * can merge this schema with the other services' without conflicting rules.
 */
export const apiConfigSchema = z.object({
  /** @default 8000 */
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  /** @default 127.0.0.1 (set 0.0.0.0 in a container) */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** @default info */
  LOG_LEVEL: logConfig.shape.LOG_LEVEL,
  /** Attempts each new job gets, the first included. @default 3 */
  JOB_MAX_ATTEMPTS: retryConfig.shape.JOB_MAX_ATTEMPTS,
});

export type ApiConfig = Readonly<z.output<typeof apiConfigSchema>>;

/**
 * Parses the API's configuration; throws `CONFIG_INVALID` naming every bad key. Empty values count
 * as unset. Only `main.ts` passes `process.env`.
 */
export function loadApiConfig(env: Record<string, string | undefined>): ApiConfig {
  return parseConfig(apiConfigSchema, env);
}

/** The API run as its own service: its keys plus where the store, blobs and queues live. */
export const apiServiceConfigSchema = apiConfigSchema
  .extend(storageConfig.shape)
  .extend({ SHUTDOWN_TIMEOUT_MS: logConfig.shape.SHUTDOWN_TIMEOUT_MS });

export type ApiServiceConfig = Readonly<z.output<typeof apiServiceConfigSchema>>;

export const loadApiServiceConfig = (env: Record<string, string | undefined>): ApiServiceConfig =>
  parseConfig(apiServiceConfigSchema, env);
