import { readFile } from 'node:fs/promises';
import { OrchestratorError, describeError } from '@orch/core';
import {
  classifierConfig,
  logConfig,
  parseConfig,
  retryConfig,
  storageConfig,
  toClassifierOptions,
} from '@orch/platform/runtime';
import type { Logger } from '@orch/platform/runtime';
import { z } from 'zod';
import type { ApiOptions } from './app.ts';
import { parseApiKeys } from './auth.ts';

/**
 * The API's environment. Shared keys reuse the platform's definitions, so an all-in-one entrypoint
 * can merge this schema with the other services' without conflicting rules. The CLASSIFIER_* keys
 * are the scheduler's: the API labels `orch_jobs_submitted_total` with the pool each job will be
 * routed to, so both services must be given the same values.
 */
export const apiConfigSchema = classifierConfig.extend({
  /** @default 8000 */
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  /** @default 127.0.0.1 (set 0.0.0.0 in a container) */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** @default info */
  LOG_LEVEL: logConfig.shape.LOG_LEVEL,
  LOG_FORMAT: logConfig.shape.LOG_FORMAT,
  /** Attempts each new job gets, the first included. @default 3 */
  JOB_MAX_ATTEMPTS: retryConfig.shape.JOB_MAX_ATTEMPTS,
  /** How long an Idempotency-Key is remembered. @default 86400000 (24 h) */
  IDEMPOTENCY_TTL_MS: z.coerce.number().int().positive().default(86_400_000),
  /**
   * API keys, as hashes: `<tenant>:<sha256>[:admin]` entries separated by commas or newlines (see
   * `auth.ts`). With neither this nor API_KEYS_FILE the API runs without authentication, which it
   * allows only on a loopback HOST outside azure mode.
   */
  API_KEYS: z.string().optional(),
  /** A file holding the same list (a mounted Kubernetes or Key Vault secret); read at startup. */
  API_KEYS_FILE: z.string().optional(),
  /** Requests per tenant per RATE_LIMIT_WINDOW_MS (with API keys only); 0 turns it off. @default 1200 */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(1200),
  /** @default 60000 */
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().positive().default(60_000),
  /**
   * Failed authentications (no, malformed or unknown API key) one client address may make per
   * AUTH_FAILURE_WINDOW_MS (with API keys only); past it, that address's requests without a valid
   * key get 429 RATE_LIMITED until the window ends, while valid keys from it still work. 0 turns
   * it off. @default 30
   */
  AUTH_FAILURE_MAX: z.coerce.number().int().min(0).default(30),
  /** @default 60000 */
  AUTH_FAILURE_WINDOW_MS: z.coerce.number().int().positive().default(60_000),
  /** Live (submitted, queued, retrying or running) jobs a tenant may have; 0 turns it off. @default 100000 */
  TENANT_MAX_LIVE_JOBS: z.coerce.number().int().min(0).default(100_000),
  /** A request must arrive whole within this time (slow clients get 408). @default 30000 */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /** Origins allowed to call the API from a browser, comma-separated; empty: CORS off. */
  CORS_ORIGINS: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o.length > 0),
    ),
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

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * Everything `buildApp` needs from the configuration, the API keys read from where they are kept.
 * Refuses (`CONFIG_INVALID`) to run without keys in azure mode or on a non-loopback HOST; without
 * keys on loopback it runs open and says so.
 */
export async function loadApiOptions(
  config: ApiConfig,
  context: { mode: 'embedded' | 'local' | 'azure'; logger: Logger },
): Promise<ApiOptions> {
  const sources = [
    ...(config.API_KEYS ? [parseApiKeys(config.API_KEYS, 'API_KEYS')] : []),
    ...(config.API_KEYS_FILE ? [parseApiKeys(await readKeysFile(config.API_KEYS_FILE), 'API_KEYS_FILE')] : []),
  ];
  const apiKeys = sources.flat();
  if (apiKeys.length === 0) {
    if (context.mode === 'azure') {
      throw new OrchestratorError(
        'CONFIG_INVALID',
        'azure mode needs API keys: set API_KEYS_FILE (the Key Vault secret mounted by the api Deployment) or API_KEYS',
      );
    }
    if (!LOOPBACK_HOSTS.has(config.HOST)) {
      throw new OrchestratorError(
        'CONFIG_INVALID',
        `HOST=${config.HOST} is reachable from other machines: set API_KEYS or API_KEYS_FILE ` +
          '(make a key with `npx orch keygen --tenant <name>`), or bind to 127.0.0.1',
      );
    }
    context.logger.warn(
      { host: config.HOST },
      'authentication is OFF: no API keys are configured, so every request acts as admin; allowed only on loopback',
    );
  } else {
    const tenants = new Set(apiKeys.map((k) => k.tenant));
    context.logger.info(
      { keys: apiKeys.length, tenants: tenants.size, admins: apiKeys.filter((k) => k.admin).length },
      'authentication is on: API keys loaded',
    );
  }
  return {
    maxAttempts: config.JOB_MAX_ATTEMPTS,
    classifier: toClassifierOptions(config),
    idempotencyTtlInMs: config.IDEMPOTENCY_TTL_MS,
    apiKeys,
    rateLimit: { max: config.RATE_LIMIT_MAX, windowInMs: config.RATE_LIMIT_WINDOW_MS },
    authFailureLimit: { max: config.AUTH_FAILURE_MAX, windowInMs: config.AUTH_FAILURE_WINDOW_MS },
    maxLiveJobsPerTenant: config.TENANT_MAX_LIVE_JOBS,
    requestTimeoutInMs: config.REQUEST_TIMEOUT_MS,
    corsOrigins: config.CORS_ORIGINS,
  };
}

async function readKeysFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new OrchestratorError('CONFIG_INVALID', `API_KEYS_FILE=${file} cannot be read: ${describeError(e)}`, {
      cause: e,
    });
  }
}
