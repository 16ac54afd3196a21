import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OrchestratorError } from '@orch/core';
import type { ErrorCode } from '@orch/core';
import type { ApiDeps } from '../../src/index.ts';
import { STATUS_OF_CODE, toErrorResponse } from '../../src/http-errors.ts';
import { createBackends, createRecordingLogger, createTestApp, json, withOverrides } from './support.ts';
import type { Backends, TestApp } from './support.ts';

let backends: Backends;
let current: TestApp | undefined;

beforeAll(async () => {
  backends = await createBackends();
});
afterAll(() => backends.close());
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(overrides: Partial<ApiDeps> = {}): Promise<TestApp> {
  current = await createTestApp(backends, overrides);
  return current;
}

const SECRET_ERROR = 'relation "jobs" does not exist: SELECT * FROM jobs WHERE password = \'hunter2\'';

describe('server-side failures', () => {
  it('a store whose getJob throws a plain Error gives 500 INTERNAL, logs it, and leaks nothing', async () => {
    const { logger, entries } = createRecordingLogger();
    const boom = new Error(SECRET_ERROR);
    const store = withOverrides(backends.store, { getJob: () => Promise.reject(boom) });
    const { app } = await start({ store, logger });

    for (const request of [
      { method: 'GET' as const, url: '/jobs/some-job' },
      { method: 'GET' as const, url: '/jobs/some-job/result' },
      { method: 'POST' as const, url: '/jobs/some-job/cancel' },
    ]) {
      const response = await app.inject(request);
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({ code: 'INTERNAL', message: 'internal error' });
      for (const leak of ['hunter2', 'SELECT', 'relation', 'stack', '.ts:']) expect(response.body).not.toContain(leak);
    }
    const logged = entries.filter((e) => e.level === 'error').flatMap((e) => e.args);
    expect(logged).toContainEqual(expect.objectContaining({ err: boom }));
  });

  it('a thrown non-Error value is also a 500 INTERNAL', async () => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the point of the test
    const store = withOverrides(backends.store, { getJob: () => Promise.reject('just a string') });
    const { app } = await start({ store });
    const response = await app.inject({ method: 'GET', url: '/jobs/x' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({ code: 'INTERNAL', message: 'internal error' });
  });

  it('an SDK error carrying a 4xx statusCode is still a 500, not a client error with its text', async () => {
    const sdkError = Object.assign(new Error('The specified container does not exist. RequestId:abc'), {
      statusCode: 404,
      code: 'ContainerNotFound',
    });
    const store = withOverrides(backends.store, { getJob: () => Promise.reject(sdkError) });
    const { app } = await start({ store });
    const response = await app.inject({ method: 'GET', url: '/jobs/x' });
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('container');
  });

  it('DEPENDENCY_UNAVAILABLE is a 503 with a generic message', async () => {
    const store = withOverrides(backends.store, {
      getJob: () =>
        Promise.reject(
          new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'pg at 10.1.2.3 unreachable', { retryable: true }),
        ),
    });
    const { app } = await start({ store });
    const response = await app.inject({ method: 'GET', url: '/jobs/x' });
    expect(response.statusCode).toBe(503);
    expect(json(response)['code']).toBe('DEPENDENCY_UNAVAILABLE');
    expect(response.body).not.toContain('10.1.2.3');
  });
});

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['DELETE', '/jobs'],
    ['PUT', '/jobs/abc'],
    ['GET', '/jobs/abc/unknown'],
  ] as const)('%s %s is 404 ROUTE_NOT_FOUND', async (method, url) => {
    const { app } = await start();
    const response = await app.inject({ method, url });
    expect(response.statusCode).toBe(404);
    expect(json(response)['code']).toBe('ROUTE_NOT_FOUND');
    expect(json(response)['message']).toEqual(expect.any(String));
  });
});

describe('toErrorResponse', () => {
  const options = { bodyLimitBytes: 1024 };

  it.each([
    ['VALIDATION_FAILED', 400],
    ['INVALID_JSON', 400],
    ['JOB_NOT_FOUND', 404],
    ['ROUTE_NOT_FOUND', 404],
    ['JOB_NOT_FINISHED', 409],
    ['JOB_NOT_SUCCEEDED', 409],
    ['INVALID_TRANSITION', 409],
    ['CONFLICT', 409],
    ['PAYLOAD_TOO_LARGE', 413],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
  ] as const)('maps %s to %i with its message and details', (code, status) => {
    const response = toErrorResponse(
      new OrchestratorError(code, 'the message', { details: [{ path: 'x', message: 'y' }] }),
      options,
    );
    expect(response).toEqual({
      statusCode: status,
      body: { code, message: 'the message', details: [{ path: 'x', message: 'y' }] },
    });
  });

  it.each<ErrorCode>(['CONFIG_INVALID', 'LOCK_LOST', 'JOB_TIMEOUT', 'HANDLER_FAILED', 'INTERNAL'])(
    'maps %s to a bare 500 INTERNAL',
    (code) => {
      expect(STATUS_OF_CODE[code]).toBeUndefined();
      expect(toErrorResponse(new OrchestratorError(code, 'secret detail'), options)).toEqual({
        statusCode: 500,
        body: { code: 'INTERNAL', message: 'internal error' },
      });
    },
  );

  it('omits details when there are none', () => {
    expect(toErrorResponse(new OrchestratorError('JOB_NOT_FOUND', 'gone'), options).body).toEqual({
      code: 'JOB_NOT_FOUND',
      message: 'gone',
    });
  });

  it('keeps the status of other Fastify client errors with a code from the map', () => {
    const fastifyError = Object.assign(new Error('Request timeout'), { code: 'FST_ERR_SOMETHING', statusCode: 408 });
    expect(toErrorResponse(fastifyError, options)).toEqual({
      statusCode: 408,
      body: { code: 'REQUEST_TIMEOUT', message: 'Request timeout' },
    });
    const unmapped = Object.assign(new Error('I am a teapot'), { code: 'FST_ERR_TEAPOT', statusCode: 418 });
    expect(toErrorResponse(unmapped, options).body.code).toBe('BAD_REQUEST');
  });

  it('turns Fastify 5xx errors into INTERNAL', () => {
    const serialization = Object.assign(new Error("Response doesn't match the schema"), {
      code: 'FST_ERR_RESPONSE_SERIALIZATION',
      statusCode: 500,
    });
    expect(toErrorResponse(serialization, options)).toEqual({
      statusCode: 500,
      body: { code: 'INTERNAL', message: 'internal error' },
    });
  });
});
