import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '@orch/api/auth';
import { eventually, freePort, removeDir, startSystem, waitTerminal, type RunningSystem } from '@orch/platform/testing';
import { EXIT_API_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE } from '../../src/exit-codes.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/main.ts');
const EMBEDDED = path.resolve(import.meta.dirname, '../../../embedded/src/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `orch <args>` as its own process, the way a user's shell does, and waits for it to exit. */
async function orch(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ORCH_API_URL: system.url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

const json = <T>(run: Run): T => JSON.parse(run.stdout) as T;

interface Embedded {
  system: RunningSystem;
  dataDir: string;
  stop(): Promise<void>;
}

/** The embedded system as a process, with quick simulated jobs, in a data folder of its own. */
async function startEmbedded(env: Record<string, string> = {}): Promise<Embedded> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'orch-cli-e2e-'));
  const system = await startSystem(EMBEDDED, {
    DATA_DIR: dataDir,
    SIMULATED_DURATION_FACTOR: '0.01',
    BATCH_LINGER_MS: '50',
    BATCH_POLL_INTERVAL_MS: '200',
    ...env,
  });
  return {
    system,
    dataDir,
    async stop() {
      await system.killAll();
      await removeDir(dataDir);
    },
  };
}

let embedded: Embedded | undefined;
let system: RunningSystem;
let dataDir: string;

beforeAll(async () => {
  embedded = await startEmbedded();
  ({ system, dataDir } = embedded);
});

afterAll(async () => {
  await embedded?.stop();
});

describe('orch, run as a process against a live embedded system', () => {
  it('submits a job with every field as a flag, shows its status, and prints its result', async () => {
    const submitted = await orch([
      'submit',
      '--type',
      'synthetic',
      '--rows',
      '2000',
      '--estimated-runtime-sec',
      '5',
      '--priority',
      'high',
      '--latency-sensitive',
      '--data',
      '{"seed": 7}',
      '--json',
    ]);
    expect(submitted.stderr).toBe('');
    expect(submitted.code).toBe(EXIT_OK);
    const { job_id: id } = json<{ job_id: string; status: string }>(submitted);

    const [done] = await waitTerminal(system.url, [id], 60_000);
    expect(done?.status).toBe('succeeded');

    const status = await orch(['status', id, '--json']);
    expect(status.code).toBe(EXIT_OK);
    const view = json<{ job_id: string; queue: string; priority: string; status: string }>(status);
    expect(view).toMatchObject({ job_id: id, queue: 'actor-jobs', priority: 'high', status: 'succeeded' });

    const human = await orch(['status', id]);
    expect(human.code).toBe(EXIT_OK);
    expect(human.stdout).toContain(id);
    expect(human.stdout).toContain('succeeded');

    const out = path.join(dataDir, 'result.json');
    const result = await orch(['result', id, '--output', out]);
    expect(result.code).toBe(EXIT_OK);
    const written = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    const fetched = (await (await fetch(`${system.url}/jobs/${id}/result`)).json()) as Record<string, unknown>;
    expect(written).toEqual(fetched);
  });

  it('submits --count jobs in chunks, then lists them with filters', async () => {
    const submitted = await orch(['submit', '--count', '25', '--chunk-size', '10', '--rows', '10', '--json']);
    expect(submitted.code).toBe(EXIT_OK);
    const { job_ids: ids } = json<{ job_ids: string[] }>(submitted);
    expect(new Set(ids).size).toBe(25);

    await waitTerminal(system.url, ids, 60_000);
    const listed = await orch(['list', '--status', 'succeeded', '--queue', 'batch-jobs', '--all', '--json']);
    expect(listed.code).toBe(EXIT_OK);
    const page = json<{ jobs: { job_id: string; status: string; queue: string }[]; next_cursor: null }>(listed);
    expect(page.next_cursor).toBeNull();
    expect(page.jobs.every((j) => j.status === 'succeeded' && j.queue === 'batch-jobs')).toBe(true);
    expect(page.jobs.map((j) => j.job_id)).toEqual(expect.arrayContaining(ids));

    const table = await orch(['list', '--status', 'succeeded', '--limit', '5']);
    expect(table.code).toBe(EXIT_OK);
    expect(table.stdout.split('\n').filter((line) => ids.some((id) => line.includes(id))).length).toBe(5);
  });

  it('shows every queue, as a table and as JSON', async () => {
    const table = await orch(['queues']);
    expect(table.code).toBe(EXIT_OK);
    for (const queue of ['jobqueue', 'actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs']) {
      expect(table.stdout).toContain(queue);
    }
    const asJson = json<{ queues: Record<string, { active: number; scheduled: number; dead_letter: number }> }>(
      await orch(['queues', '--json']),
    );
    expect(Object.keys(asJson.queues)).toEqual(
      expect.arrayContaining(['jobqueue', 'actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs']),
    );
    expect(typeof asJson.queues['batch-jobs']?.active).toBe('number');
  });

  it('cancels a job that has not finished, and refuses to cancel a finished one with the API’s code', async () => {
    // A long simulated job in the spark pool stays queued or running for a while.
    const submitted = await orch(['submit', '--rows', '20000000', '--estimated-runtime-sec', '600', '--json']);
    const { job_id: id } = json<{ job_id: string }>(submitted);
    const cancelled = await orch(['cancel', id, '--json']);
    expect(cancelled.code).toBe(EXIT_OK);
    expect(json<{ status: string }>(cancelled).status).toBe('cancelled');

    const again = await orch(['cancel', id]);
    expect(again.code).toBe(EXIT_API_ERROR);
    expect(again.stderr).toContain('INVALID_TRANSITION');
  });

  it('reports a 4xx with its stable code, as text and as JSON', async () => {
    const missing = await orch(['status', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(EXIT_API_ERROR);
    expect(missing.stderr).toContain('JOB_NOT_FOUND');

    const asJson = await orch(['status', '00000000-0000-4000-8000-000000000000', '--json']);
    expect(asJson.code).toBe(EXIT_API_ERROR);
    expect(asJson.stdout).toBe('');
    expect(JSON.parse(asJson.stderr)).toMatchObject({ error: { code: 'JOB_NOT_FOUND' } });
  });

  it('rejects a malformed flag before calling the API', async () => {
    const run = await orch(['submit', '--rows', 'many']);
    expect(run.code).toBe(EXIT_USAGE);
    expect(run.stderr).toMatch(/rows/);
  });

  it('says clearly that the API is down, with its own exit code', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await orch(['queues'], { ORCH_API_URL: url });
    expect(run.code).toBe(EXIT_UNREACHABLE);
    expect(run.stderr).toContain(url);
  });

  it('watches queue depths as NDJSON until interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'watch', '--interval', '0.2', '--json'], {
      env: { ...process.env, ORCH_API_URL: system.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch printed:\n${stdout}`)), 30_000);
      child.stdout.on('data', () => {
        if (stdout.split('\n').filter(Boolean).length >= 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGINT');
    expect(await exited).toBe(EXIT_OK);
    const lines = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { at: string; queues: Record<string, unknown> });
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(Object.keys(line.queues)).toContain('jobqueue');
  });
});

describe('orch against a system with API keys', () => {
  const acme = generateApiKey('acme');
  let withKeys: Embedded | undefined;
  let keyed: RunningSystem;

  beforeAll(async () => {
    withKeys = await startEmbedded({ API_KEYS: acme.entry });
    keyed = withKeys.system;
  });

  afterAll(async () => {
    await withKeys?.stop();
  });

  it('submits with ORCH_API_KEY, follows the job and fetches its result with --api-key', async () => {
    const env = { ORCH_API_URL: keyed.url, ORCH_API_KEY: acme.key };
    const submitted = await orch(['submit', '--rows', '500', '--latency-sensitive=false', '--json'], env);
    expect(submitted.stderr).toBe('');
    expect(submitted.code).toBe(EXIT_OK);
    const { job_id: id } = json<{ job_id: string }>(submitted);

    const view = await eventually(
      async () => {
        const status = await orch(['status', id, '--json'], env);
        expect(status.code).toBe(EXIT_OK);
        const job = json<{ status: string; queue: string | null; latency_sensitive: boolean }>(status);
        return job.status === 'succeeded' ? job : undefined;
      },
      60_000,
      `job ${id} to succeed`,
    );
    expect(view).toMatchObject({ queue: 'batch-jobs', latency_sensitive: false });

    // The flag works as well as the variable (here with no ORCH_API_KEY at all).
    const result = await orch(['--api-key', acme.key, 'result', id, '--json'], {
      ORCH_API_URL: keyed.url,
      ORCH_API_KEY: '',
    });
    expect(result.code).toBe(EXIT_OK);
    expect(json<{ count: number }>(result).count).toBe(500);
  });

  it('with a wrong key or none, says the key is the problem, never prints the key, and exits 1', async () => {
    const wrongKey = 'orch_this-key-was-never-issued';
    const wrong = await orch(['queues'], { ORCH_API_URL: keyed.url, ORCH_API_KEY: wrongKey });
    expect(wrong.code).toBe(EXIT_API_ERROR);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toContain('error: UNAUTHENTICATED (HTTP 401): the API key is not valid');
    expect(wrong.stderr).toContain('--api-key or ORCH_API_KEY');
    expect(wrong.stderr).not.toContain(wrongKey);

    const none = await orch(['list'], { ORCH_API_URL: keyed.url, ORCH_API_KEY: '' });
    expect(none.code).toBe(EXIT_API_ERROR);
    expect(none.stderr).toContain('UNAUTHENTICATED (HTTP 401): an API key is required');

    const asJson = await orch(['--api-key', wrongKey, 'submit', '--json'], { ORCH_API_URL: keyed.url });
    expect(asJson.code).toBe(EXIT_API_ERROR);
    expect(JSON.parse(asJson.stderr)).toMatchObject({ error: { code: 'UNAUTHENTICATED', status: 401 } });
  });
});
