import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_STATES } from '@orch/core';
import { createBackends, createTestApp } from './support.ts';
import type { Backends, TestApp } from './support.ts';

/**
 * Property-based abuse of every endpoint: 10,000+ generated requests with hostile methods, paths,
 * path parameters, query strings, headers and bodies. Whatever arrives, the API answers below 500
 * with its JSON error shape, leaks nothing internal, creates a job only for a request it accepted
 * (202), and is healthy afterwards.
 */
const RUNS_PER_PROPERTY = 2_500;
/** Fixed, so CI is reproducible; set FUZZ_SEED to explore other inputs (a failure prints its seed). */
const seed = Number(process.env.FUZZ_SEED ?? 20_261_122);

const hostileStrings = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '../../etc/passwd',
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    '%ff%fe',
    'a'.repeat(5_000),
    '😀'.repeat(300),
    '\u202e',
    '<script>alert(1)</script>',
    "' OR 1=1 --",
    '${jndi:ldap://x}',
    '__proto__',
    'constructor',
    'NaN',
    '-0',
    '1e309',
    '9'.repeat(400),
  ),
);

const hugeNumbers = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, Number.MIN_VALUE, -1, 0.5),
  fc.bigInt().map((n) => n.toString()),
);

/** Nested deeply enough to trip naive recursive code. */
const deepNesting = fc.integer({ min: 50, max: 5_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));

const submissionLike = fc.record(
  {
    rows: fc.oneof(hugeNumbers, hostileStrings, fc.constant(null)),
    estimated_runtime_sec: fc.oneof(hugeNumbers, hostileStrings, fc.boolean()),
    priority: fc.oneof(fc.constantFrom('low', 'normal', 'high', 'urgent', 'URGENT', ''), hostileStrings),
    latency_sensitive: fc.oneof(fc.boolean(), hostileStrings, hugeNumbers),
    type: fc.oneof(fc.constantFrom('synthetic', 'nope'), hostileStrings),
    data: fc.oneof(fc.jsonValue({ maxDepth: 6 }), hostileStrings),
    __proto__: fc.jsonValue({ maxDepth: 2 }),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  submissionLike.map((b) => JSON.stringify(b)),
  fc.array(submissionLike, { maxLength: 5 }).map((jobs) => JSON.stringify({ jobs })),
  fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v)),
  deepNesting,
  hostileStrings,
  fc.constantFrom('', '{', '{"jobs":', 'null', '[]', '{"jobs":[]}', '{"rows":1e999}', '\u0000'),
);

const id = fc.oneof(fc.uuid(), hostileStrings);
const path = fc.oneof(
  fc.constantFrom('/submit-job', '/jobs', '/jobs/batch', '/queues/status', '/stats', '/health', '/healthz', '/readyz'),
  id.map((i) => `/jobs/${encodeURIComponent(i)}`),
  id.map((i) => `/jobs/${encodeURIComponent(i)}/result`),
  id.map((i) => `/jobs/${encodeURIComponent(i)}/cancel`),
  hostileStrings.map((s) => `/${s}`),
  id.map((i) => `/jobs/${i}`),
);

const query = fc
  .dictionary(
    fc.oneof(fc.constantFrom('status', 'queue', 'limit', 'cursor', 'since'), hostileStrings),
    fc.oneof(
      hostileStrings,
      hugeNumbers.map(String),
      fc.constantFrom(...JOB_STATES, 'actor-jobs', '0', '-1', '501', '1e3'),
    ),
    { maxKeys: 4 },
  )
  .map((q) => new URLSearchParams(q).toString());

const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/JSON',
    '',
  ),
  hostileStrings,
);

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
  path,
  query,
  contentType,
  body: fc.option(body, { nil: undefined }),
  header: fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), hostileStrings),
});

type Request = typeof request extends fc.Arbitrary<infer R> ? R : never;

/** A URL as an HTTP client would put it on the wire: raw when it parses, else with the path percent-encoded. */
function sendable(path: string, query: string): string {
  const url = `${path}${query ? `?${query}` : ''}`;
  try {
    new URL(url.startsWith('//') ? `http://localhost${url}` : url, 'http://localhost');
    return url;
  } catch {
    return `/${encodeURIComponent(path.slice(1))}${query ? `?${query}` : ''}`;
  }
}

const LEAKS = [
  /\bat .+:\d+:\d+\)?$/m,
  /\bSELECT\b|\bINSERT INTO\b|\bUPDATE jobs\b/i,
  /postgres(ql)?:\/\//,
  /node_modules/,
];

describe('fuzzing every endpoint', () => {
  let backends: Backends;
  let test: TestApp;
  let accepted = 0;
  let baseline = 0;

  const totalJobs = async () => Object.values(await backends.store.countByState()).reduce((sum, n) => sum + n, 0);

  beforeAll(async () => {
    backends = await createBackends();
    test = await createTestApp(backends);
    baseline = await totalJobs();
  });
  afterAll(async () => {
    await test.close();
    await backends.close();
  });

  async function send(r: Request): Promise<void> {
    const headers: Record<string, string> = {};
    const [name, value] = r.header;
    // Some strings cannot be header values at all; a client could not send them either.
    if (/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) headers[name] = value;
    if (r.contentType && /^[\t\x20-\x7e]*$/.test(r.contentType)) headers['content-type'] = r.contentType;
    const response = await test.app.inject({
      method: r.method as 'GET',
      url: sendable(r.path, r.query),
      headers,
      ...(r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD' && { payload: r.body }),
    });

    expect(response.statusCode, `${r.method} ${r.path} → ${response.body.slice(0, 300)}`).toBeLessThan(500);
    // What the server says (JSON); the dashboard's fixed files (HTML with a <select>) are not answers.
    if (String(response.headers['content-type']).includes('json')) {
      for (const leak of LEAKS) expect(response.body).not.toMatch(leak);
    }
    if (response.statusCode >= 400 && r.method !== 'HEAD') {
      const error = response.json<{ code?: unknown; message?: unknown }>();
      expect(error.code).toMatch(/^[A-Z_]+$/);
      expect(typeof error.message).toBe('string');
    }
    if (response.statusCode === 202) {
      const accepted202 = response.json<{ job_id?: string; job_ids?: string[] }>();
      accepted += accepted202.job_ids?.length ?? (accepted202.job_id ? 1 : 0);
    }
  }

  it('given hostile requests to any route, then nothing answers 5xx and every error is a JSON error', async () => {
    await fc.assert(fc.asyncProperty(request, send), { numRuns: RUNS_PER_PROPERTY * 2, seed });
  });

  it('given hostile submissions, then only accepted (202) requests create jobs', async () => {
    const submission = request.map((r) => ({
      ...r,
      method: 'POST' as const,
      path: r.path.length % 3 === 0 ? '/jobs/batch' : r.path.length % 3 === 1 ? '/jobs' : '/submit-job',
      contentType: 'application/json',
    }));
    await fc.assert(fc.asyncProperty(submission, send), { numRuns: RUNS_PER_PROPERTY, seed });

    // Some generated submissions are valid: the count below is a real check, not 0 = 0.
    expect(accepted).toBeGreaterThan(0);
    expect(await totalJobs()).toBe(baseline + accepted);
  });

  it('given hostile path parameters and query strings, then reads answer 2xx or 4xx only', async () => {
    const reads = request.map((r) => ({ ...r, method: 'GET' as const, body: undefined }));
    await fc.assert(fc.asyncProperty(reads, send), { numRuns: RUNS_PER_PROPERTY, seed });
  });

  it('given all of that, then the server is still healthy and accepts a valid job', async () => {
    expect((await test.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const response = await test.app.inject({ method: 'POST', url: '/jobs', payload: { rows: 10 } });
    expect(response.statusCode).toBe(202);
  });
});
