import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOrchestratorError } from '@orch/core';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, loadApiConfig, loadApiOptions, parseApiKeys } from '../../src/index.ts';
import type { ApiDeps, ApiOptions } from '../../src/index.ts';
import { createBackends, createRecordingLogger, createTestApp, silentLogger, withOverrides } from './support.ts';
import type { Backends, TestApp } from './support.ts';

let backends: Backends;
beforeAll(async () => {
  backends = await createBackends();
});
afterAll(async () => {
  await backends?.close();
});

const acme = generateApiKey('acme');
const globex = generateApiKey('globex');
const ops = generateApiKey('ops', true);
const keys = parseApiKeys([acme.entry, globex.entry, ops.entry].join('\n'), 'test');

const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function withApp(
  options: Partial<ApiOptions>,
  body: (app: FastifyInstance) => Promise<void>,
  deps: Partial<ApiDeps> = {},
): Promise<void> {
  const test: TestApp = await createTestApp(backends, deps, options);
  try {
    await body(test.app);
  } finally {
    await test.close();
  }
}

function submit(app: FastifyInstance, key: string | undefined, payload: unknown = {}, url = '/jobs') {
  return app.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...(key !== undefined && as(key)) },
  });
}

const codeOf = (response: LightMyRequestResponse): unknown => response.json<{ code?: unknown }>().code;

describe('API keys and tenants', () => {
  it('given keys, when a request has no key, a malformed header or an unknown key, then 401 UNAUTHENTICATED, never echoing the key', async () => {
    await withApp({ apiKeys: keys }, async (app) => {
      const none = await app.inject({ method: 'GET', url: '/jobs' });
      expect(none.statusCode).toBe(401);
      expect(codeOf(none)).toBe('UNAUTHENTICATED');
      const basic = await app.inject({ method: 'GET', url: '/jobs', headers: { authorization: 'Basic Zm9vOmJhcg==' } });
      expect(basic.statusCode).toBe(401);
      const wrong = await app.inject({ method: 'GET', url: '/jobs', headers: as('orch_not-a-real-key-1234') });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).not.toContain('orch_not-a-real-key-1234');
      // Nothing was created by the refused submission.
      const refused = await submit(app, undefined);
      expect(refused.statusCode).toBe(401);
    });
  });

  it('given keys, then probes and the API description stay open', async () => {
    await withApp({ apiKeys: keys }, async (app) => {
      for (const url of ['/healthz', '/readyz', '/health', '/openapi.json']) {
        expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
      }
    });
  });

  it("given two tenants, then each sees only its own jobs: another tenant's job is a 404 to read, list, cancel or fetch", async () => {
    await withApp({ apiKeys: keys }, async (app) => {
      const created = await submit(app, acme.key, { rows: 10 });
      expect(created.statusCode).toBe(202);
      const id = created.json<{ job_id: string }>().job_id;

      expect((await app.inject({ method: 'GET', url: `/jobs/${id}`, headers: as(acme.key) })).statusCode).toBe(200);
      for (const [method, url] of [
        ['GET', `/jobs/${id}`],
        ['GET', `/jobs/${id}/result`],
        ['POST', `/jobs/${id}/cancel`],
      ] as const) {
        const response = await app.inject({ method, url, headers: as(globex.key) });
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        expect(codeOf(response)).toBe('JOB_NOT_FOUND');
      }
      const globexList = await app.inject({ method: 'GET', url: '/jobs?limit=500', headers: as(globex.key) });
      expect(globexList.json<{ jobs: { job_id: string }[] }>().jobs.map((j) => j.job_id)).not.toContain(id);
      const acmeList = await app.inject({ method: 'GET', url: '/jobs?limit=500', headers: as(acme.key) });
      expect(acmeList.json<{ jobs: { job_id: string }[] }>().jobs.map((j) => j.job_id)).toContain(id);

      // The admin key sees every tenant's jobs.
      expect((await app.inject({ method: 'GET', url: `/jobs/${id}`, headers: as(ops.key) })).statusCode).toBe(200);
      const adminList = await app.inject({ method: 'GET', url: '/jobs?limit=500', headers: as(ops.key) });
      expect(adminList.json<{ jobs: { job_id: string }[] }>().jobs.map((j) => j.job_id)).toContain(id);
      // ...and the job is still there for its owner: globex's cancel changed nothing.
      const view = await app.inject({ method: 'GET', url: `/jobs/${id}`, headers: as(acme.key) });
      expect(view.json<{ status: string }>().status).not.toBe('cancelled');
    });
  });

  it('given two tenants using the same Idempotency-Key, then each gets its own job', async () => {
    await withApp({ apiKeys: keys }, async (app) => {
      const send = (key: string) =>
        app.inject({
          method: 'POST',
          url: '/jobs',
          payload: '{"rows": 5}',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'shared-key-1', ...as(key) },
        });
      const a = (await send(acme.key)).json<{ job_id: string }>().job_id;
      const b = (await send(globex.key)).json<{ job_id: string }>().job_id;
      const again = await send(acme.key);
      expect(a).not.toBe(b);
      expect(again.json<{ job_id: string }>().job_id).toBe(a);
    });
  });

  it('given two tenants, then queue depths and workers are shared infrastructure: the same for every key', async () => {
    await withApp({ apiKeys: keys, dashboard: { sampleIntervalInMs: 60_000 } }, async (app) => {
      for (const key of [acme.key, acme.key, globex.key])
        expect((await submit(app, key, { rows: 3 })).statusCode).toBe(202);

      type History = { samples: { queues: unknown; workers: unknown }[] };
      const historyOf = async (key: string) => {
        const response = await app.inject({ method: 'GET', url: '/stats/history', headers: as(key) });
        expect(response.statusCode).toBe(200);
        return response.json<History>().samples.map(({ queues, workers }) => ({ queues, workers }));
      };
      const [acmeSamples, globexSamples, adminSamples] = [
        await historyOf(acme.key),
        await historyOf(globex.key),
        await historyOf(ops.key),
      ];
      expect(adminSamples.length).toBeGreaterThan(0);
      expect(acmeSamples).toEqual(adminSamples);
      expect(globexSamples).toEqual(adminSamples);
      const depths = await Promise.all(
        [acme.key, globex.key, ops.key].map(async (key) =>
          (await app.inject({ method: 'GET', url: '/queues/status', headers: as(key) })).json<unknown>(),
        ),
      );
      expect(depths[0]).toEqual(depths[2]);
      expect(depths[1]).toEqual(depths[2]);
      const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
        paths: Record<string, { get?: { description?: string } }>;
      }>();
      expect(openapi.paths['/queues/status']?.get?.description).toContain('shared infrastructure');
      expect(openapi.paths['/stats/history']?.get?.description).toContain('shared infrastructure');
    });
  });

  it('given keys, then /metrics needs an admin key (403 FORBIDDEN for a tenant key)', async () => {
    const { createPrometheusMetrics } = await import('@orch/platform/metrics');
    const test = await createTestApp(
      backends,
      { metrics: createPrometheusMetrics({ service: 'api' }) },
      { apiKeys: keys },
    );
    try {
      const tenant = await test.app.inject({ method: 'GET', url: '/metrics', headers: as(acme.key) });
      expect(tenant.statusCode).toBe(403);
      expect(codeOf(tenant)).toBe('FORBIDDEN');
      const admin = await test.app.inject({ method: 'GET', url: '/metrics', headers: as(ops.key) });
      expect(admin.statusCode).toBe(200);
      expect(admin.body).toContain('orch_jobs_submitted_total');
    } finally {
      await test.close();
    }
  });
});

describe('abuse limits', () => {
  it('given a rate limit, when a tenant exceeds it, then 429 RATE_LIMITED with Retry-After, and other tenants are unaffected', async () => {
    await withApp({ apiKeys: keys, rateLimit: { max: 3, windowInMs: 60_000 } }, async (app) => {
      const get = (key: string) => app.inject({ method: 'GET', url: '/jobs?limit=1', headers: as(key) });
      for (let i = 0; i < 3; i++) expect((await get(acme.key)).statusCode).toBe(200);
      const limited = await get(acme.key);
      expect(limited.statusCode).toBe(429);
      expect(codeOf(limited)).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect((await get(globex.key)).statusCode).toBe(200);
      // Probes are never limited.
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    });
  });

  describe('failed authentications per client address', () => {
    const attacker = '198.51.100.7';
    const bystander = '198.51.100.8';
    const from = (remoteAddress: string, authorization?: string) => ({
      remoteAddress,
      ...(authorization !== undefined && { headers: { authorization } }),
    });
    /** A clock the test moves; the limiter's windows follow it. */
    const createClock = () => {
      let at = Date.parse('2026-01-01T00:00:00Z');
      return { clock: () => new Date(at), advance: (ms: number) => (at += ms) };
    };

    it('given a brute force from one address, then after N failures its requests without a valid key get 429 RATE_LIMITED with Retry-After until the window ends', async () => {
      const { clock, advance } = createClock();
      await withApp(
        { apiKeys: keys, authFailureLimit: { max: 5, windowInMs: 60_000 } },
        async (app) => {
          const get = (remoteAddress: string, authorization?: string) =>
            app.inject({ method: 'GET', url: '/jobs?limit=1', ...from(remoteAddress, authorization) });
          // Every kind of failure counts: no key, another scheme, unknown keys.
          for (const authorization of [undefined, 'Basic Zm9vOmJhcg==', 'Bearer orch_guess-1', 'Bearer orch_guess-2']) {
            expect((await get(attacker, authorization)).statusCode).toBe(401);
          }
          advance(20_000);
          expect((await get(attacker, 'Bearer orch_guess-3')).statusCode).toBe(401);

          for (const authorization of ['Bearer orch_guess-4', undefined, 'Token x', `Bearer ${acme.key}x`]) {
            const limited = await get(attacker, authorization);
            expect(limited.statusCode, String(authorization)).toBe(429);
            expect(codeOf(limited)).toBe('RATE_LIMITED');
            expect(limited.json<{ message: string }>().message).toMatch(/failed authentications/);
            // The window started with the first failure, 20 s ago.
            expect(limited.headers['retry-after']).toBe('40');
            expect(limited.body).not.toContain('orch_guess');
          }
          // Probes and the API description stay open to it.
          expect((await app.inject({ method: 'GET', url: '/healthz', remoteAddress: attacker })).statusCode).toBe(200);

          advance(39_000);
          expect((await get(attacker)).headers['retry-after']).toBe('1');
          advance(1_000);
          // A new window: the address is refused with 401 again, and counted afresh.
          for (let i = 0; i < 5; i++) expect((await get(attacker, 'Bearer orch_guess-5')).statusCode).toBe(401);
          expect((await get(attacker, 'Bearer orch_guess-6')).statusCode).toBe(429);
        },
        { clock },
      );
    });

    it('given a refused address, then valid keys from it still work and keep their per-tenant limit, and other addresses are unaffected', async () => {
      await withApp(
        { apiKeys: keys, authFailureLimit: { max: 3, windowInMs: 60_000 }, rateLimit: { max: 4, windowInMs: 60_000 } },
        async (app) => {
          const get = (remoteAddress: string, authorization?: string) =>
            app.inject({ method: 'GET', url: '/jobs?limit=1', ...from(remoteAddress, authorization) });
          for (let i = 0; i < 3; i++) expect((await get(attacker, `Bearer orch_guess-${i}`)).statusCode).toBe(401);
          expect((await get(attacker, 'Bearer orch_guess-3')).statusCode).toBe(429);

          // An office behind the same NAT address: its valid keys are neither refused nor counted.
          for (let i = 0; i < 4; i++) expect((await get(attacker, as(acme.key).authorization)).statusCode).toBe(200);
          const tenantLimited = await get(attacker, as(acme.key).authorization);
          expect(tenantLimited.statusCode).toBe(429);
          expect(tenantLimited.json<{ message: string }>().message).toMatch(/rate limit of 4 requests/);
          expect((await get(attacker, as(globex.key).authorization)).statusCode).toBe(200);
          const created = await app.inject({
            method: 'POST',
            url: '/jobs',
            payload: '{"rows": 1}',
            remoteAddress: attacker,
            headers: { 'content-type': 'application/json', ...as(ops.key) },
          });
          expect(created.statusCode).toBe(202);

          // Another address has its own count.
          expect((await get(bystander, 'Bearer orch_guess-7')).statusCode).toBe(401);
          expect((await get(bystander)).statusCode).toBe(401);
        },
      );
    });

    it('given no API keys or a limit of 0, then nothing is limited', async () => {
      await withApp({ authFailureLimit: { max: 1, windowInMs: 60_000 } }, async (app) => {
        for (let i = 0; i < 5; i++) {
          expect((await app.inject({ method: 'GET', url: '/jobs?limit=1', remoteAddress: attacker })).statusCode).toBe(
            200,
          );
        }
      });
      await withApp({ apiKeys: keys, authFailureLimit: { max: 0, windowInMs: 60_000 } }, async (app) => {
        for (let i = 0; i < 50; i++) {
          expect((await app.inject({ method: 'GET', url: '/jobs', remoteAddress: attacker })).statusCode).toBe(401);
        }
      });
    });

    it('given failures from more addresses than it remembers, then the oldest are forgotten (memory stays bounded)', async () => {
      await withApp({ apiKeys: keys, authFailureLimit: { max: 1, windowInMs: 60_000, maxClients: 2 } }, async (app) => {
        const status = async (remoteAddress: string) =>
          (await app.inject({ method: 'GET', url: '/jobs', remoteAddress })).statusCode;
        expect(await status('203.0.113.1')).toBe(401);
        expect(await status('203.0.113.1')).toBe(429);
        expect(await status('203.0.113.2')).toBe(401);
        expect(await status('203.0.113.3')).toBe(401);
        // 203.0.113.1 was the least recent of three with room for two.
        expect(await status('203.0.113.1')).toBe(401);
        expect(await status('203.0.113.3')).toBe(429);
      });
    });
  });

  it('given a quota on live jobs, when a submission would exceed it, then 429 QUOTA_EXCEEDED and nothing is created', async () => {
    await withApp({ apiKeys: keys, maxLiveJobsPerTenant: 3 }, async (app) => {
      const tenant = generateApiKey(`quota-${Date.now()}`);
      await withApp(
        { apiKeys: [...keys, ...parseApiKeys(tenant.entry, 'test')], maxLiveJobsPerTenant: 3 },
        async (q) => {
          expect((await submit(q, tenant.key, { jobs: [{}, {}] }, '/jobs/batch')).statusCode).toBe(202);
          const tooMany = await submit(q, tenant.key, { jobs: [{}, {}] }, '/jobs/batch');
          expect(tooMany.statusCode).toBe(429);
          expect(codeOf(tooMany)).toBe('QUOTA_EXCEEDED');
          expect(tooMany.headers['retry-after']).toBe('5');
          expect((await submit(q, tenant.key)).statusCode).toBe(202);
          expect((await submit(q, tenant.key)).statusCode).toBe(429);
          const listed = await q.inject({ method: 'GET', url: '/jobs?limit=500', headers: as(tenant.key) });
          expect(listed.json<{ jobs: unknown[] }>().jobs).toHaveLength(3);
        },
      );
      // Another tenant has its own room.
      expect((await submit(app, globex.key)).statusCode).toBe(202);
    });
  });

  it('sends security headers and no CORS headers unless origins are configured', async () => {
    await withApp({}, async (app) => {
      const response = await app.inject({ method: 'GET', url: '/stats', headers: { origin: 'https://evil.example' } });
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(String(response.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
      expect(String(response.headers['content-security-policy'])).toContain("script-src 'self'");
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
    });
    await withApp({ corsOrigins: ['https://ops.example'] }, async (app) => {
      const allowed = await app.inject({ method: 'GET', url: '/stats', headers: { origin: 'https://ops.example' } });
      expect(allowed.headers['access-control-allow-origin']).toBe('https://ops.example');
      const other = await app.inject({ method: 'GET', url: '/stats', headers: { origin: 'https://evil.example' } });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  it('given keys, then a 401 still carries the security headers, and a CORS preflight is answered without a key', async () => {
    await withApp({ apiKeys: keys, corsOrigins: ['https://ops.example'] }, async (app) => {
      const refused = await app.inject({ method: 'GET', url: '/jobs', headers: { origin: 'https://ops.example' } });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['x-content-type-options']).toBe('nosniff');
      expect(String(refused.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
      expect(refused.headers['strict-transport-security']).toBeDefined();
      // A browser can read why it was refused.
      expect(refused.headers['access-control-allow-origin']).toBe('https://ops.example');

      const preflight = await app.inject({
        method: 'OPTIONS',
        url: '/jobs',
        headers: {
          origin: 'https://ops.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://ops.example');
      expect(String(preflight.headers['access-control-allow-headers'])).toContain('authorization');
    });
  });

  it('answers headers over the size limit with 431 HEADERS_TOO_LARGE as JSON, and keeps serving', async () => {
    const test = await createTestApp(backends);
    try {
      await test.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = test.app.server.address() as AddressInfo;
      const call = (headers: Record<string, string>) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/healthz', headers }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const big = await call({ 'x-filler': 'a'.repeat(64 * 1024) });
      expect(big.status).toBe(431);
      expect(JSON.parse(big.body)).toEqual({ code: 'HEADERS_TOO_LARGE', message: 'request headers are too large' });
      expect((await call({})).status).toBe(200);
    } finally {
      await test.close();
    }
  });

  it('never returns stack traces, SQL or connection strings, and logs the real cause instead', async () => {
    const secret = 'postgres://orch:s3cr3t-pw@db.internal:5432/orch';
    const failing = withOverrides(backends.store, {
      queryJobs: () =>
        Promise.reject(new Error(`relation "jobs" does not exist: SELECT * FROM jobs WHERE tenant = $1 (${secret})`)),
    });
    const { logger, entries } = createRecordingLogger();
    const test = await createTestApp({ store: failing, blobs: backends.blobs }, { logger });
    try {
      const response = await test.app.inject({ method: 'GET', url: '/jobs' });
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({ code: 'INTERNAL', message: 'internal error' });
      for (const leak of ['SELECT', 's3cr3t', 'postgres://', 'at ', '.ts:']) expect(response.body).not.toContain(leak);
      const logged = entries.flatMap((e) => e.args).map((a) => (a as { err?: unknown }).err);
      expect(
        logged.some((err) => err instanceof Error && err.message.startsWith('relation "jobs" does not exist')),
      ).toBe(true);
    } finally {
      await test.close();
    }
  });
});

describe('loadApiOptions (startup rules)', () => {
  it('refuses azure mode without keys, and a non-loopback HOST without keys', async () => {
    const refused = async (env: Record<string, string>, mode: 'embedded' | 'azure') => {
      try {
        await loadApiOptions(loadApiConfig(env), { mode, logger: silentLogger });
      } catch (e) {
        return isOrchestratorError(e) ? e : undefined;
      }
      return undefined;
    };
    expect((await refused({}, 'azure'))?.message).toMatch(/azure mode needs API keys/);
    expect((await refused({ HOST: '0.0.0.0' }, 'embedded'))?.message).toMatch(/HOST=0.0.0.0/);
  });

  it('runs without keys on loopback and says so at startup', async () => {
    const { logger, entries } = createRecordingLogger();
    const options = await loadApiOptions(loadApiConfig({}), { mode: 'embedded', logger });
    expect(options.apiKeys).toEqual([]);
    expect(entries.some((e) => e.level === 'warn' && JSON.stringify(e.args).includes('authentication is OFF'))).toBe(
      true,
    );
  });

  it('reads the keys from API_KEYS_FILE (a mounted secret) and API_KEYS together', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'api-keys-'));
    try {
      const file = join(dir, 'api-keys');
      await writeFile(file, `# mounted from Key Vault\n${acme.entry}\n${ops.entry}\n`);
      const options = await loadApiOptions(
        loadApiConfig({ API_KEYS_FILE: file, API_KEYS: globex.entry, HOST: '0.0.0.0' }),
        {
          mode: 'azure',
          logger: silentLogger,
        },
      );
      expect(options.apiKeys?.map((k) => [k.tenant, k.admin])).toEqual([
        ['globex', false],
        ['acme', false],
        ['ops', true],
      ]);
      await expect(
        loadApiOptions(loadApiConfig({ API_KEYS_FILE: join(dir, 'missing') }), {
          mode: 'embedded',
          logger: silentLogger,
        }),
      ).rejects.toThrow(/API_KEYS_FILE=.*cannot be read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a raw key pasted where its hash belongs, without printing it', () => {
    const pasted = `acme:${acme.key}`;
    expect(() => parseApiKeys(pasted, 'API_KEYS')).toThrow(/entry 1 has no valid SHA-256/);
    try {
      parseApiKeys(pasted, 'API_KEYS');
    } catch (e) {
      expect((e as Error).message).not.toContain(acme.key);
    }
    expect(() => parseApiKeys(`bad tenant!:${hashApiKey('x')}`, 'API_KEYS')).toThrow(/invalid tenant name/);
    expect(() => parseApiKeys(`a:${hashApiKey('x')},b:${hashApiKey('x')}`, 'API_KEYS')).toThrow(/repeats the hash/);
  });
});
