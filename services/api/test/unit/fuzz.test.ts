import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_STATES } from '@orch/core';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { generateApiKey, parseApiKeys } from '../../src/index.ts';
import { createBackends, createTestApp } from './support.ts';
import type { Backends, TestApp } from './support.ts';

/**
 * Property-based abuse of every endpoint: 13,000 generated requests with hostile methods, paths,
 * path parameters, query strings, headers and bodies, first against an API without keys, then
 * against one with API keys, two tenants and an admin, a rate limit, a live-job quota and a limit
 * on failed authentications, where the Authorization and Idempotency-Key headers are fuzzed too.
 * Whatever arrives, the API answers below 500 with its JSON error shape, leaks nothing internal,
 * creates a job only for a request it accepted (202) and for the tenant that sent it, never shows
 * one tenant another's jobs, refuses every request without a valid key (but the public routes),
 * never refuses a valid key for others' failures, and is healthy afterwards.
 */
const RUNS = { anyRoute: 4_000, submissions: 2_000, reads: 2_000, keyedAnyRoute: 3_000, keyedSubmissions: 2_000 };
/** Fixed, so CI is reproducible; set FUZZ_SEED to explore other inputs (a failure prints its seed). */
const seed = Number(process.env.FUZZ_SEED ?? 20_261_122);
/** Each property sends thousands of requests: far more than the default 5 s on a busy machine. */
const LONG = { timeout: 120_000 };

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

/** Routes served without a key (GET and HEAD): probes, the dashboard's files, the API description. */
const PUBLIC_PATHS = new Set([
  '/health',
  '/healthz',
  '/readyz',
  '/openapi.json',
  '/',
  '/dashboard/app.js',
  '/dashboard/app.css',
  '/dashboard/uplot.js',
  '/dashboard/uplot.css',
]);

const id = fc.oneof(fc.uuid(), hostileStrings);
const path = fc.oneof(
  fc.constantFrom(
    '/submit-job',
    '/jobs',
    '/jobs/batch',
    '/queues/status',
    '/stats',
    '/stats/history',
    '/metrics',
    '/docs',
    '/docs/',
    '/docs/json',
    '/docs/static/index.html',
    ...PUBLIC_PATHS,
  ),
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

/** What is checked of every answer, with or without keys. */
function expectSafeAnswer(r: Request, response: LightMyRequestResponse): void {
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
}

/** The headers of a generated request that a client could send at all. */
function headersOf(r: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  const [name, value] = r.header;
  // Some strings cannot be header values at all; a client could not send them either.
  if (/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) headers[name] = value;
  if (r.contentType && /^[\t\x20-\x7e]*$/.test(r.contentType)) headers['content-type'] = r.contentType;
  return headers;
}

/** The path the router matches for a URL: without fragment, query and surrounding blanks, percent-decoded. */
function routePathOf(url: string): string {
  const path = url.split('#', 1)[0]?.split('?', 1)[0]?.trim() ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const withBody = (r: Request) =>
  r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD' ? { payload: r.body } : {};

const idsOf = (response: LightMyRequestResponse): string[] => {
  const accepted = response.json<{ job_id?: string; job_ids?: string[] }>();
  return accepted.job_ids ?? (accepted.job_id === undefined ? [] : [accepted.job_id]);
};

let backends: Backends;
/** Every job id a 202 returned, with the tenant of the key that sent it ('' without keys). */
const owners = new Map<string, string>();
let baseline = 0;

const totalJobs = async () => Object.values(await backends.store.countByState()).reduce((sum, n) => sum + n, 0);

beforeAll(async () => {
  backends = await createBackends();
  baseline = await totalJobs();
}, 60_000);
afterAll(async () => {
  await backends?.close();
});

describe('fuzzing every endpoint (no API keys)', () => {
  let test: TestApp;

  beforeAll(async () => {
    test = await createTestApp(backends, {
      metrics: createPrometheusMetrics({ service: 'api', defaultMetrics: false }),
    });
  });
  afterAll(async () => {
    await test.close();
  });

  async function send(r: Request): Promise<void> {
    const response = await test.app.inject({
      method: r.method as 'GET',
      url: sendable(r.path, r.query),
      headers: headersOf(r),
      ...withBody(r),
    });
    expectSafeAnswer(r, response);
    if (response.statusCode === 202) for (const jobId of idsOf(response)) owners.set(jobId, '');
  }

  it(
    'given hostile requests to any route, then nothing answers 5xx and every error is a JSON error',
    LONG,
    async () => {
      await fc.assert(fc.asyncProperty(request, send), { numRuns: RUNS.anyRoute, seed });
    },
  );

  it('given hostile submissions, then only accepted (202) requests create jobs', LONG, async () => {
    const submission = request.map((r) => ({
      ...r,
      method: 'POST' as const,
      path: r.path.length % 3 === 0 ? '/jobs/batch' : r.path.length % 3 === 1 ? '/jobs' : '/submit-job',
      contentType: 'application/json',
    }));
    await fc.assert(fc.asyncProperty(submission, send), { numRuns: RUNS.submissions, seed });

    // Some generated submissions are valid: the count below is a real check, not 0 = 0.
    expect(owners.size).toBeGreaterThan(0);
    expect(await totalJobs()).toBe(baseline + owners.size);
  });

  it('given hostile path parameters and query strings, then reads answer 2xx or 4xx only', LONG, async () => {
    const reads = request.map((r) => ({ ...r, method: 'GET' as const, body: undefined }));
    await fc.assert(fc.asyncProperty(reads, send), { numRuns: RUNS.reads, seed });
  });

  it('given all of that, then the server is still healthy and accepts a valid job', async () => {
    expect((await test.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const response = await test.app.inject({ method: 'POST', url: '/jobs', payload: { rows: 10 } });
    expect(response.statusCode).toBe(202);
    for (const jobId of idsOf(response)) owners.set(jobId, '');
  });
});

describe('fuzzing with API keys, tenants and abuse limits', () => {
  const acme = generateApiKey('acme');
  const globex = generateApiKey('globex');
  const ops = generateApiKey('ops', true);
  /** Never used by the fuzzing, so its rate limit and quota are intact at the end. */
  const fresh = generateApiKey('fresh');
  const principals = [
    { key: acme.key, tenant: 'acme', admin: false },
    { key: globex.key, tenant: 'globex', admin: false },
    { key: ops.key, tenant: 'ops', admin: true },
  ];
  type Principal = (typeof principals)[number];
  /** Failed authentications the one fuzzing address may make per minute. */
  const AUTH_FAILURE_MAX = 200;
  let test: TestApp;

  beforeAll(async () => {
    test = await createTestApp(
      backends,
      { metrics: createPrometheusMetrics({ service: 'api', defaultMetrics: false }) },
      {
        apiKeys: parseApiKeys([acme.entry, globex.entry, ops.entry, fresh.entry].join('\n'), 'fuzz'),
        // Each tenant sends some 500 requests with a valid key to a real route and has dozens of
        // jobs accepted: every tenant runs into both limits during the run.
        rateLimit: { max: 300, windowInMs: 60_000 },
        maxLiveJobsPerTenant: 40,
        // All of it comes from one address, some 2,000 requests without a valid key: the first
        // 200 are refused with 401, the rest (within the minute) with 429, valid keys never.
        authFailureLimit: { max: AUTH_FAILURE_MAX, windowInMs: 60_000 },
      },
    );
  });
  afterAll(async () => {
    await test.close();
  });

  /** An Authorization header and who it authenticates (none: the request must be refused). */
  const someKey = fc.constantFrom(...principals);
  const authorization: fc.Arbitrary<{ value: string | undefined; principal?: Principal }> = fc.oneof(
    { weight: 6, arbitrary: someKey.map((p) => ({ value: `Bearer ${p.key}`, principal: p })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(someKey, fc.constantFrom('bearer', 'BEARER', 'Bearer  '))
        .map(([p, scheme]) => ({ value: `${scheme} ${p.key}`, principal: p })),
    },
    // Well-formed but not issued: random, truncated, one character off, another tenant's hash.
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc
          .uint8Array({ minLength: 32, maxLength: 32 })
          .map((bytes) => ({ value: `Bearer orch_${Buffer.from(bytes).toString('base64url')}` })),
        someKey.map((p) => ({ value: `Bearer ${p.key.slice(0, -1)}` })),
        someKey.map((p) => ({ value: `Bearer ${p.key.slice(0, -1)}${p.key.endsWith('A') ? 'B' : 'A'}` })),
        someKey.map((p) => ({ value: `Bearer ${parseApiKeys(generateApiKey(p.tenant).entry, 'x')[0]?.sha256}` })),
      ),
    },
    { weight: 1, arbitrary: fc.constant({ value: undefined }) },
    // Malformed: another scheme, no key, extra words, the bare key, hostile text.
    {
      weight: 2,
      arbitrary: fc.oneof(
        someKey.map((p) => ({ value: `Basic ${Buffer.from(`${p.tenant}:${p.key}`).toString('base64')}` })),
        fc.constantFrom('Bearer', 'Bearer ', '', 'Token x', `Bearer ${'a'.repeat(10_000)}`).map((value) => ({ value })),
        someKey.map((p) => ({ value: `Bearer ${p.key} ${p.key}` })),
        someKey.map((p) => ({ value: p.key })),
        hostileStrings.map((value) => ({ value })),
      ),
    },
  );

  /** Few valid keys, so they repeat (replays and reuse with another body), and hostile ones. */
  const idempotencyKey: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    {
      weight: 3,
      arbitrary: fc.constantFrom('k-1', 'k-2', 'k-3', 'order-7731', '00000000-0000-4000-8000-000000000000'),
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        hostileStrings,
        fc.constantFrom('', ' ', 'has space', 'x'.repeat(256), 'ünicode', 'k-1\t', '\u0000'),
      ),
    },
    { weight: 1, arbitrary: fc.constant(['k-1', 'k-2']).map((keys) => [...keys]) },
  );

  /** A path, or one of the jobs created so far (by any tenant): reads across tenants. */
  const target = fc.oneof(
    { weight: 3, arbitrary: path.map((p) => ({ path: p })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.nat(), fc.constantFrom('', '/result', '/cancel'))
        .map(([index, suffix]) => ({ known: index, suffix })),
    },
  );

  const keyedRequest = fc.record({ base: request, target, authorization, idempotencyKey });
  type KeyedRequest = typeof keyedRequest extends fc.Arbitrary<infer R> ? R : never;

  const seen = {
    unauthenticated: 0,
    authFailuresLimited: 0,
    accepted: 0,
    replayed: 0,
    rateLimited: 0,
    quotaExceeded: 0,
    forbidden: 0,
    crossTenant: 0,
  };

  function resolvePath(t: KeyedRequest['target']): { path: string; knownId?: string } {
    if ('path' in t) return { path: t.path };
    const known = [...owners.keys()];
    const knownId = known[t.known % Math.max(1, known.length)];
    return knownId === undefined ? { path: '/jobs' } : { path: `/jobs/${knownId}${t.suffix}`, knownId };
  }

  async function send(k: KeyedRequest): Promise<void> {
    const { path: resolved, knownId } = resolvePath(k.target);
    const r = { ...k.base, path: resolved };
    const headers: Record<string, string | string[]> = headersOf(r);
    delete headers.authorization;
    delete headers['idempotency-key'];
    const auth = k.authorization.value;
    if (auth !== undefined && /^[\t\x20-\x7e\x80-\xff]*$/.test(auth)) headers.authorization = auth;
    if (k.idempotencyKey !== undefined) headers['idempotency-key'] = k.idempotencyKey;
    const principal = headers.authorization === undefined ? undefined : k.authorization.principal;

    const response = await test.app.inject({
      method: r.method as 'GET',
      url: sendable(r.path, r.query),
      headers,
      ...withBody(r),
    });
    expectSafeAnswer(r, response);
    const status = response.statusCode;
    const error = status >= 400 && r.method !== 'HEAD' ? response.json<{ code: string; message: string }>() : undefined;
    const code = error?.code;
    const routed = routePathOf(sendable(r.path, r.query));
    const publicRoute =
      (r.method === 'GET' || r.method === 'HEAD') && (PUBLIC_PATHS.has(routed) || routed.startsWith('/docs'));

    // Told apart from a tenant's limits by its message (HEAD answers have none).
    const authFailuresLimited =
      status === 429 && error !== undefined && error.message.includes('failed authentications');
    if (!principal) {
      // No valid key: refused, whatever the route, method or body, unless the route is public. A
      // URL the router rejects before any hook (undecodable, an over-long id) is a bare 404. Once
      // the address has failed too often: 429 instead of 401, with the wait until its window ends.
      const routerRejected = status === 404 && (code === undefined || code === 'ROUTE_NOT_FOUND');
      if (!publicRoute && !routerRejected) {
        // (A window may end during a slow run, so 401s can follow 429s again.)
        const refusals = seen.unauthenticated < AUTH_FAILURE_MAX ? [401] : [401, 429];
        expect(refusals, `${r.method} ${r.path.slice(0, 200)} with ${String(auth).slice(0, 80)}`).toContain(status);
      }
      if (status === 401) seen.unauthenticated += 1;
      if (code !== undefined && status === 401) expect(code).toBe('UNAUTHENTICATED');
      if (status === 429) {
        if (error !== undefined) expect(authFailuresLimited, error.message).toBe(true);
        if (code !== undefined) expect(code).toBe('RATE_LIMITED');
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
        seen.authFailuresLimited += 1;
      }
      return;
    }
    expect(status, `${r.method} ${r.path} as ${principal.tenant}`).not.toBe(401);
    if (status === 429) {
      if (code !== undefined) expect(['RATE_LIMITED', 'QUOTA_EXCEEDED']).toContain(code);
      expect(authFailuresLimited, "a valid key is never refused for others' failures").toBe(false);
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      if (code === 'QUOTA_EXCEEDED') seen.quotaExceeded += 1;
      else seen.rateLimited += 1;
      return;
    }
    if (status === 403) seen.forbidden += 1;
    if (status === 202) {
      const ids = idsOf(response);
      if (response.headers['idempotent-replayed'] === 'true') {
        seen.replayed += 1;
        for (const jobId of ids)
          expect(owners.get(jobId), 'a replay returns its own tenant’s jobs').toBe(principal.tenant);
      } else {
        seen.accepted += 1;
        for (const jobId of ids) {
          expect(owners.has(jobId)).toBe(false);
          owners.set(jobId, principal.tenant);
        }
      }
    }
    // A tenant sees its own jobs, an admin every job, and nobody else's exist for a tenant.
    if (knownId !== undefined && r.method === 'GET' && r.path === `/jobs/${knownId}`) {
      const mine = principal.admin || owners.get(knownId) === principal.tenant;
      expect(status, `GET a job of ${owners.get(knownId) || 'no tenant'} as ${principal.tenant}`).toBe(
        mine ? 200 : 404,
      );
      if (!mine) seen.crossTenant += 1;
    }
    if (knownId !== undefined && !principal.admin && owners.get(knownId) !== principal.tenant) {
      expect(status, `${r.method} ${r.path}: another tenant's job`).not.toBe(200);
    }
    if (status === 200 && r.method === 'GET' && r.path === '/jobs' && !principal.admin) {
      for (const job of response.json<{ jobs: { job_id: string }[] }>().jobs) {
        expect(owners.get(job.job_id), 'a tenant lists only its own jobs').toBe(principal.tenant);
      }
    }
    if (r.method === 'GET' && r.path === '/metrics' && !principal.admin) {
      expect(status).toBe(403);
    }
  }

  it('given hostile requests with fuzzed keys to any route, then the keys, tenants and limits hold', LONG, async () => {
    await fc.assert(fc.asyncProperty(keyedRequest, send), { numRuns: RUNS.keyedAnyRoute, seed });
  });

  it(
    'given hostile submissions with fuzzed keys and Idempotency-Keys, then jobs are created only by accepted requests, for their tenant',
    LONG,
    async () => {
      // Some bodies repeat, so a repeated Idempotency-Key meets the same request (a replay) as well as others.
      const repeated = fc.constantFrom('{"rows":1}', '{"jobs":[{"rows":2},{"priority":"high"}]}');
      const submissions = fc.tuple(keyedRequest, fc.option(repeated, { nil: undefined })).map(([k, body]) => ({
        ...k,
        target: { path: k.base.path.length % 2 === 0 ? '/jobs/batch' : '/jobs' },
        base: { ...k.base, method: 'POST' as const, contentType: 'application/json', body: body ?? k.base.body },
      }));
      await fc.assert(fc.asyncProperty(submissions, send), { numRuns: RUNS.keyedSubmissions, seed });

      expect(await totalJobs()).toBe(baseline + owners.size);
      const keyed = [...owners].filter(([, tenant]) => tenant !== '');
      const stored = await backends.store.getJobs(keyed.map(([jobId]) => jobId));
      expect(stored).toHaveLength(keyed.length);
      for (const job of stored) expect(job.tenant, job.id).toBe(owners.get(job.id));
      // Every rule was exercised, not vacuously true.
      for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(0);
    },
  );

  it('given all of that, then the server is still healthy and accepts a valid job', async () => {
    expect((await test.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const response = await test.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { rows: 10 },
      headers: { authorization: `Bearer ${fresh.key}` },
    });
    expect(response.statusCode).toBe(202);
  });
});
