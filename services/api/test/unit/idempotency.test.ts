import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchestratorError } from '@orch/core';
import { createBackends, createTestApp, withOverrides } from './support.ts';
import type { Backends, TestApp } from './support.ts';

describe('Idempotency-Key on submissions', () => {
  let backends: Backends;
  let test: TestApp;
  let now = Date.parse('2026-11-22T12:00:00Z');

  beforeAll(async () => {
    backends = await createBackends();
    test = await createTestApp(backends, { clock: () => new Date(now) }, { idempotencyTtlInMs: 60_000 });
  });
  afterAll(async () => {
    await test.close();
    await backends.close();
  });

  const submit = (url: string, payload: unknown, key?: string) =>
    test.app.inject({
      method: 'POST',
      url,
      payload: payload as Record<string, unknown>,
      headers: key === undefined ? {} : { 'idempotency-key': key },
    });
  const total = async () => Object.values(await backends.store.countByState()).reduce((a, b) => a + b, 0);
  const newKey = () => `key-${crypto.randomUUID()}`;

  it('given the same key and body, when resubmitted, then the original job id comes back and nothing is created', async () => {
    const key = newKey();
    const first = await submit('/jobs', { rows: 10, priority: 'high' }, key);
    const before = await total();

    const again = await submit('/jobs', { rows: 10, priority: 'high' }, key);
    const viaOtherPath = await submit('/submit-job', { rows: 10, priority: 'high' }, key);

    expect(first.statusCode).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(again.statusCode).toBe(202);
    expect(again.json()).toStrictEqual(first.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(first.headers.location);
    expect(viaOtherPath.json()).toStrictEqual(first.json());
    expect(await total()).toBe(before);
  });

  it('given the same key with the same content in another key order or with defaults spelled out, then it replays', async () => {
    const key = newKey();
    const first = await submit('/jobs', { rows: 5, data: { a: 1, b: [1, 2] } }, key);

    const reordered = await submit('/jobs', { data: { b: [1, 2], a: 1 }, rows: 5, priority: 'normal' }, key);

    expect(reordered.statusCode).toBe(202);
    expect(reordered.json()).toStrictEqual(first.json());
  });

  it('given the same key with a different body, then it is a 409 IDEMPOTENCY_KEY_REUSED and nothing is created', async () => {
    const key = newKey();
    await submit('/jobs', { rows: 10 }, key);
    const before = await total();

    const different = await submit('/jobs', { rows: 11 }, key);
    const asBatch = await submit('/jobs/batch', { jobs: [{ rows: 10 }] }, key);

    expect(different.statusCode).toBe(409);
    expect(different.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(asBatch.statusCode).toBe(409);
    expect(await total()).toBe(before);
  });

  it('given a batch with a key, when resubmitted, then the same ids come back in the same order', async () => {
    const key = newKey();
    const jobs = [{ rows: 1 }, { rows: 2 }, { latency_sensitive: true }];
    const first = await submit('/jobs/batch', { jobs }, key);
    const again = await submit('/jobs/batch', { jobs }, key);

    expect(first.json<{ job_ids: string[] }>().job_ids).toHaveLength(3);
    expect(again.json()).toStrictEqual(first.json());
  });

  it('given concurrent requests with one key, then exactly one job is created and all get its id', async () => {
    const key = newKey();
    const before = await total();

    const responses = await Promise.all(Array.from({ length: 8 }, () => submit('/jobs', { rows: 42 }, key)));

    expect(responses.map((r) => r.statusCode)).toStrictEqual(Array(8).fill(202));
    expect(new Set(responses.map((r) => r.json<{ job_id: string }>().job_id)).size).toBe(1);
    expect(await total()).toBe(before + 1);
  });

  it('given the key is taken by a request whose record cannot be read back, then 409 IDEMPOTENCY_KEY_IN_USE with Retry-After, and nothing is created', async () => {
    // The store says another request holds the key, yet its record is gone (it expired in between).
    const store = withOverrides(backends.store, {
      createJobs: () =>
        Promise.reject(new OrchestratorError('IDEMPOTENCY_KEY_IN_USE', 'the idempotency key is already in use')),
      getIdempotencyRecord: () => Promise.resolve(undefined),
    });
    const racing = await createTestApp({ store, blobs: backends.blobs });
    try {
      const before = await total();
      const response = await racing.app.inject({
        method: 'POST',
        url: '/jobs',
        payload: { rows: 7 },
        headers: { 'idempotency-key': newKey() },
      });

      expect(response.statusCode).toBe(409);
      const body = response.json<{ code: string; message: string }>();
      expect(body.code).toBe('IDEMPOTENCY_KEY_IN_USE');
      expect(body.message).toContain('retry');
      expect(response.headers['retry-after']).toBe('1');
      expect(await total()).toBe(before);
    } finally {
      await racing.close();
    }
  });

  it('given the key has expired, then the same key creates a new job', async () => {
    const key = newKey();
    const first = await submit('/jobs', { rows: 3 }, key);

    now += 61_000;
    const later = await submit('/jobs', { rows: 3 }, key);

    expect(later.statusCode).toBe(202);
    expect(later.json<{ job_id: string }>().job_id).not.toBe(first.json<{ job_id: string }>().job_id);
  });

  it.each([['has space'], ['x'.repeat(256)], ['ünicode']])(
    'given a malformed key (%s), then it is a 400',
    async (key) => {
      const response = await submit('/jobs', { rows: 1 }, key);

      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    },
  );
});
