import { hashApiKey, parseApiKeys } from '@orch/api/auth';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT_API_ERROR, EXIT_OK, EXIT_USAGE } from '../../src/exit-codes.ts';
import { jobView, queuesStatus, run, startStubApi } from './support.ts';
import type { StubApi } from './support.ts';

let api: StubApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const batchAnswer = (body: string) => {
  const jobs = (JSON.parse(body) as { jobs: unknown[] }).jobs;
  return { status: 202, body: { job_ids: jobs.map((_, i) => `job-${i}`), status: 'submitted' } };
};

describe('orch submit --count', () => {
  it('given a terminal, then a progress bar on stderr counts the accepted jobs up to the total', async () => {
    api = await startStubApi({ 'POST /jobs/batch': (r) => batchAnswer(r.body) });
    const out = await run(['submit', '--count', '250', '--chunk-size', '100'], {
      env: { ORCH_API_URL: api.url },
      stderrIsTTY: true,
    });
    expect(out.code).toBe(EXIT_OK);
    expect(api.requests.map((r) => (JSON.parse(r.body) as { jobs: unknown[] }).jobs.length)).toEqual([100, 100, 50]);
    expect(out.stderr).toContain('250/250 jobs');
    expect(out.stdout.split('\n').filter((l) => l.startsWith('job-'))).toHaveLength(250);
  });

  it('given a pipe, then no progress bar is drawn', async () => {
    api = await startStubApi({ 'POST /jobs/batch': (r) => batchAnswer(r.body) });
    const out = await run(['submit', '--count', '3'], { env: { ORCH_API_URL: api.url }, stderrIsTTY: false });
    expect(out.code).toBe(EXIT_OK);
    expect(out.stderr).not.toContain('submitting [');
  });

  it('given an idempotency key, then chunk n is sent with <key>#<n> and the API key as a bearer token', async () => {
    api = await startStubApi({ 'POST /jobs/batch': (r) => batchAnswer(r.body) });
    const out = await run(['submit', '--count', '5', '--chunk-size', '2', '--idempotency-key', 'order-7'], {
      env: { ORCH_API_URL: api.url, ORCH_API_KEY: 'k-secret' },
    });
    expect(out.code).toBe(EXIT_OK);
    expect(api.requests.map((r) => r.headers['idempotency-key'])).toEqual(['order-7#1', 'order-7#2', 'order-7#3']);
    expect(api.requests.every((r) => r.headers.authorization === 'Bearer k-secret')).toBe(true);
  });

  it('given a chunk the API refuses, then the ids accepted before it are printed, then the error (exit 1)', async () => {
    let calls = 0;
    api = await startStubApi({
      'POST /jobs/batch': (r) =>
        ++calls === 1
          ? batchAnswer(r.body)
          : { status: 429, body: { error: { code: 'RATE_LIMITED', message: 'slow down' } } },
    });
    const out = await run(['submit', '--count', '4', '--chunk-size', '2'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_API_ERROR);
    expect(out.stdout.split('\n').filter((l) => l.startsWith('job-'))).toHaveLength(2);
    expect(out.stderr).toContain('2 of 4 jobs were accepted before the failure');
    expect(out.stderr).toContain('RATE_LIMITED');
  });
});

describe('orch submit --latency-sensitive', () => {
  const accepted = () => ({ status: 202, body: { job_id: 'job-1', status: 'submitted' } });

  it.each([
    [['--latency-sensitive'], true],
    [['--latency-sensitive=true'], true],
    [['--latency-sensitive=false'], false],
    [['--latency-sensitive', 'no'], false],
    [['--no-latency-sensitive'], false],
    [[], undefined],
  ])('given %j, then latency_sensitive is sent as %j', async (flags, expected) => {
    api = await startStubApi({ 'POST /jobs': accepted });
    const out = await run(['submit', ...flags, '--rows', '5'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_OK);
    const body = JSON.parse(api.requests[0]?.body ?? '{}') as Record<string, unknown>;
    expect(body['latency_sensitive']).toBe(expected);
    expect(body['rows']).toBe(5);
  });

  it('given a value that is not a boolean, then it is a usage error and nothing is sent', async () => {
    api = await startStubApi({ 'POST /jobs': accepted });
    const out = await run(['submit', '--latency-sensitive=maybe'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_USAGE);
    expect(out.stderr).toContain('Must be true or false');
    expect(api.requests).toEqual([]);
  });
});

describe('orch against an API with keys', () => {
  it('given a 401, then the API code is printed with how to give a key, exit 1', async () => {
    api = await startStubApi({
      'GET /queues/status': () => ({
        status: 401,
        body: { code: 'UNAUTHENTICATED', message: 'an API key is required: send "Authorization: Bearer <key>"' },
      }),
    });
    const out = await run(['queues'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_API_ERROR);
    expect(out.stderr).toContain('UNAUTHENTICATED (HTTP 401)');
    expect(out.stderr).toContain('--api-key or ORCH_API_KEY');
  });
});

describe('orch status / queues (human output)', () => {
  it('prints a job field by field, then its history in order', async () => {
    api = await startStubApi({ 'GET /jobs/job-1': () => ({ body: jobView() }) });
    const out = await run(['status', 'job-1'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_OK);
    expect(out.stdout).toContain('batch-jobs');
    const order = ['submitted', 'queued', 'running', 'succeeded'].map((s) => out.stdout.lastIndexOf(s));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('prints every queue with its lanes in a table', async () => {
    api = await startStubApi({ 'GET /queues/status': () => ({ body: queuesStatus() }) });
    const out = await run(['queues'], { env: { ORCH_API_URL: api.url } });
    expect(out.code).toBe(EXIT_OK);
    const mlLine = out.stdout.split('\n').find((l) => l.includes('ml-jobs'));
    expect(mlLine).toMatch(/3.*1.*2/);
    expect(out.stdout).toContain('high');
  });
});

describe('orch keygen', () => {
  it('makes a random key and the entry that grants it, which the API accepts', async () => {
    const out = await run(['keygen', '--tenant', 'acme', '--json']);
    expect(out.code).toBe(EXIT_OK);
    const made = JSON.parse(out.stdout) as { tenant: string; admin: boolean; key: string; entry: string };
    expect(made).toMatchObject({ tenant: 'acme', admin: false });
    expect(made.entry).toBe(`acme:${hashApiKey(made.key)}`);
    const [entry] = parseApiKeys(made.entry, 'test');
    expect(entry).toMatchObject({ tenant: 'acme', admin: false });
    const other = JSON.parse((await run(['keygen', '--tenant', 'acme', '--json'])).stdout) as { key: string };
    expect(other.key).not.toBe(made.key);
  });

  it('marks admin keys, and refuses a bad tenant name as a usage error', async () => {
    const admin = await run(['keygen', '--tenant', 'ops', '--admin']);
    expect(admin.stdout).toMatch(/^key: +orch_\S+\nentry: ops:[0-9a-f]{64}:admin\n$/);
    const bad = await run(['keygen', '--tenant', 'no spaces']);
    expect(bad.code).toBe(EXIT_USAGE);
    expect(bad.stderr).toContain('invalid tenant name');
  });
});
