import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isOrchestratorError } from '@orch/core';
import { apiConfigSchema, loadApiConfig, loadApiOptions } from '../../src/index.ts';
import { silentLogger } from './support.ts';

/** The scheduler's classifier settings, which the API reads too (to label its submission metric). */
const CLASSIFIER_DEFAULTS = {
  CLASSIFIER_ROWS_DIVISOR: 1_000_000,
  CLASSIFIER_RUNTIME_DIVISOR: 10,
  CLASSIFIER_SPARK_THRESHOLD: 10,
  CLASSIFIER_ML_THRESHOLD: 4,
  CLASSIFIER_MULTIPLIER_LOW: 1,
  CLASSIFIER_MULTIPLIER_NORMAL: 1,
  CLASSIFIER_MULTIPLIER_HIGH: 1.5,
  CLASSIFIER_MULTIPLIER_URGENT: 1.5,
};

describe('loadApiConfig', () => {
  it('applies the defaults', () => {
    expect(loadApiConfig({})).toEqual({
      PORT: 8000,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'auto',
      JOB_MAX_ATTEMPTS: 3,
      IDEMPOTENCY_TTL_MS: 86_400_000,
      RATE_LIMIT_MAX: 1200,
      RATE_LIMIT_WINDOW_MS: 60_000,
      AUTH_FAILURE_MAX: 30,
      AUTH_FAILURE_WINDOW_MS: 60_000,
      TENANT_MAX_LIVE_JOBS: 100_000,
      REQUEST_TIMEOUT_MS: 30_000,
      CORS_ORIGINS: [],
      ...CLASSIFIER_DEFAULTS,
    });
  });

  it('parses the environment and ignores unrelated keys', () => {
    const config = loadApiConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      JOB_MAX_ATTEMPTS: '5',
      PATH: '/usr/bin',
    });
    expect(config).toEqual({
      PORT: 9000,
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'auto',
      JOB_MAX_ATTEMPTS: 5,
      IDEMPOTENCY_TTL_MS: 86_400_000,
      RATE_LIMIT_MAX: 1200,
      RATE_LIMIT_WINDOW_MS: 60_000,
      AUTH_FAILURE_MAX: 30,
      AUTH_FAILURE_WINDOW_MS: 60_000,
      TENANT_MAX_LIVE_JOBS: 100_000,
      REQUEST_TIMEOUT_MS: 30_000,
      CORS_ORIGINS: [],
      ...CLASSIFIER_DEFAULTS,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats empty values as unset', () => {
    expect(loadApiConfig({ PORT: '', JOB_MAX_ATTEMPTS: '' })).toMatchObject({ PORT: 8000, JOB_MAX_ATTEMPTS: 3 });
  });

  it('throws CONFIG_INVALID naming every bad key', () => {
    let thrown: unknown;
    try {
      loadApiConfig({ PORT: '70000', LOG_LEVEL: 'loud', JOB_MAX_ATTEMPTS: '0' });
    } catch (e) {
      thrown = e;
    }
    expect(isOrchestratorError(thrown) && thrown.code).toBe('CONFIG_INVALID');
    const message = (thrown as Error).message;
    for (const key of ['PORT', 'LOG_LEVEL', 'JOB_MAX_ATTEMPTS']) expect(message).toContain(key);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['JOB_MAX_ATTEMPTS', 'many'],
  ])('rejects %s=%s', (key, value) => {
    expect(() => loadApiConfig({ [key]: value })).toThrow(key);
  });

  it('exposes a schema an all-in-one entrypoint can merge with its own keys', () => {
    const merged = z.object({ ...apiConfigSchema.shape, OTHER: z.string().default('x') });
    expect(merged.parse({ PORT: '1234' })).toEqual({
      PORT: 1234,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'auto',
      JOB_MAX_ATTEMPTS: 3,
      IDEMPOTENCY_TTL_MS: 86_400_000,
      RATE_LIMIT_MAX: 1200,
      RATE_LIMIT_WINDOW_MS: 60_000,
      AUTH_FAILURE_MAX: 30,
      AUTH_FAILURE_WINDOW_MS: 60_000,
      TENANT_MAX_LIVE_JOBS: 100_000,
      REQUEST_TIMEOUT_MS: 30_000,
      CORS_ORIGINS: [],
      ...CLASSIFIER_DEFAULTS,
      OTHER: 'x',
    });
  });
});

describe('loadApiOptions', () => {
  it("passes the scheduler's CLASSIFIER_* settings on, so submissions are labelled with the pool it will pick", async () => {
    const options = await loadApiOptions(
      loadApiConfig({ CLASSIFIER_ML_THRESHOLD: '2', CLASSIFIER_MULTIPLIER_URGENT: '3' }),
      { mode: 'embedded', logger: silentLogger },
    );
    expect(options.classifier).toMatchObject({
      mlThreshold: 2,
      sparkThreshold: 10,
      priorityMultipliers: { low: 1, normal: 1, high: 1.5, urgent: 3 },
    });
  });

  it('passes the limit on failed authentications per client address on (0 turns it off)', async () => {
    const load = async (env: Record<string, string>) =>
      (await loadApiOptions(loadApiConfig(env), { mode: 'embedded', logger: silentLogger })).authFailureLimit;
    expect(await load({})).toEqual({ max: 30, windowInMs: 60_000 });
    expect(await load({ AUTH_FAILURE_MAX: '0', AUTH_FAILURE_WINDOW_MS: '1000' })).toEqual({ max: 0, windowInMs: 1000 });
    expect(() => loadApiConfig({ AUTH_FAILURE_MAX: '-1' })).toThrow('AUTH_FAILURE_MAX');
    expect(() => loadApiConfig({ AUTH_FAILURE_WINDOW_MS: '0' })).toThrow('AUTH_FAILURE_WINDOW_MS');
  });
});
