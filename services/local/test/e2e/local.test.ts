import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_STATES, isTerminal } from '@orch/core';
import { startAzurite } from '@orch/platform/test-servers';
import {
  eventually,
  expectVerifiedResult,
  isListening,
  mixedJobs,
  ONE_JOB_PER_ROUTE,
  postJson,
  startSystem,
  submitAll,
  waitTerminal,
  type RunningSystem,
  removeDir,
} from '@orch/platform/testing';

/**
 * Local mode as a user runs it (`npm run start:local`): the launcher starts Azurite and every service
 * as its own process against the real RabbitMQ and PostgreSQL on this machine. Each run gets its own
 * RabbitMQ virtual host and database, so it never sees another run's messages or jobs.
 */
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const MANAGEMENT = 'http://127.0.0.1:15672/api';
const AUTH = { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` };
const run = promisify(execFile);

const serversUp = (await isListening(5672)) && (await isListening(5432)) && (await isListening(15672));
if (!serversUp && process.env.CI !== 'true') {
  console.warn('local mode e2e skipped: RabbitMQ (5672, management 15672) or PostgreSQL (5432) is not running here');
}

const id = randomBytes(4).toString('hex');
const vhost = `orch-e2e-${id}`;
const database = `orch_e2e_${id}`;
const dataDirs: string[] = [];
const systems: RunningSystem[] = [];

const FAST = {
  SIMULATED_DURATION_FACTOR: '0',
  BATCH_LINGER_MS: '50',
  BATCH_POLL_INTERVAL_MS: '200',
  RECONCILE_INTERVAL_MS: '1000',
  DISPATCH_GRACE_MS: '3000',
  RETRY_BASE_DELAY_MS: '100',
  WORKER_CONCURRENCY: '4',
  OPS_PORT: '0',
  RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`,
  DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
};

async function management(method: string, resource: string, body?: unknown): Promise<void> {
  const res = await fetch(`${MANAGEMENT}${resource}`, {
    method,
    headers: { ...AUTH, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (!res.ok && res.status !== 404) throw new Error(`${method} ${resource}: ${res.status} ${await res.text()}`);
}

/** Ids of the jobs in `status` (this run's database holds far fewer than one page of 500). */
async function jobIdsIn(base: string, status: string): Promise<string[]> {
  const page = (await (await fetch(`${base}/jobs?status=${status}&limit=500`)).json()) as {
    jobs: { job_id: string }[];
  };
  return page.jobs.map((j) => j.job_id);
}

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'orch-local-'));
  dataDirs.push(dir);
  return dir;
}

/** Waits until the RabbitMQ node answers and its AMQP and management listeners are up. */
async function awaitRabbitMq(): Promise<void> {
  // Until a starting node has registered with epmd, rabbitmqctl cannot even reach it: retry.
  await eventually(
    () =>
      run('rabbitmqctl', ['await_startup'], { timeout: 60_000 }).then(
        () => true,
        () => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1_000)),
      ),
    120_000,
    'RabbitMQ to start',
  );
  await eventually(async () => ((await isListening(5672)) ? true : undefined), 60_000, 'the AMQP listener');
  await eventually(async () => ((await isListening(15672)) ? true : undefined), 60_000, 'the management API');
}

/**
 * Starts the RabbitMQ node as the machine's own start command does, and waits for it. The node must
 * not inherit this test's pipes: it logs to stdout, and once the test run ends a closed pipe would
 * break the broker (its quorum queues stop working).
 */
async function startRabbitMq(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const starter = spawn('rabbitmq-server', ['-detached'], { stdio: 'ignore', detached: true });
    starter.once('error', reject);
    starter.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rabbitmq-server exited ${code}`))));
  });
  await awaitRabbitMq();
}

describe.skipIf(!serversUp && process.env.CI !== 'true')('local mode: every service its own process', () => {
  beforeAll(async () => {
    const vhostPath = encodeURIComponent(vhost);
    await management('PUT', `/vhosts/${vhostPath}`, {});
    await management('PUT', `/permissions/${vhostPath}/guest`, { configure: '.*', write: '.*', read: '.*' });
  });

  afterAll(async () => {
    await Promise.all(systems.map((s) => s.killAll()));
    await management('DELETE', `/vhosts/${encodeURIComponent(vhost)}`);
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.end();
    await Promise.all(dataDirs.map(removeDir));
  });

  it('starts Azurite and the five services, runs one job per route to a verified result, and stops on SIGTERM', async () => {
    const system = await startSystem(MAIN, { ...FAST, DATA_DIR: await newDataDir(), AZURITE_BLOB_PORT: '0' }, 90_000);
    systems.push(system);

    const ids = new Map<string, string>();
    for (const [queue, body] of Object.entries(ONE_JOB_PER_ROUTE)) {
      const res = await postJson(`${system.url}/submit-job`, body);
      expect(res.status).toBe(202);
      ids.set(queue, ((await res.json()) as { job_id: string }).job_id);
    }
    const views = await waitTerminal(system.url, [...ids.values()], 90_000);
    for (const [queue, jobId] of ids) {
      const view = views.find((v) => v.job_id === jobId)!;
      expect(view.queue).toBe(queue);
      await expectVerifiedResult(system.url, view);
    }
    const queues = (await (await fetch(`${system.url}/queues/status`)).json()) as { queues: Record<string, unknown> };
    expect(Object.keys(queues.queues)).toEqual(
      expect.arrayContaining(['jobqueue', 'actor-jobs', 'spark-jobs', 'ml-jobs', 'batch-jobs']),
    );
    for (const service of ['api', 'scheduler', 'actor-worker', 'spark-worker', 'batch-submitter']) {
      expect(system.output()).toContain(`started ${service}`);
    }

    system.child.kill('SIGTERM');
    expect(await system.exited).toEqual({ code: 0, signal: null });
    expect(system.output()).not.toContain('exited unexpectedly');
  });

  it('keeps every accepted job through a RabbitMQ restart mid-run: each ends succeeded with exactly one result', async () => {
    const azurite = await startAzurite({ inMemory: true, blobPort: 0 });
    try {
      const system = await startSystem(
        MAIN,
        {
          ...FAST,
          DATA_DIR: await newDataDir(),
          AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
          SIMULATED_DURATION_FACTOR: '0.01',
        },
        90_000,
      );
      systems.push(system);

      // Two long spark jobs (15 s each at this factor, first in line as `high`) are sure to be running on
      // a worker when the broker goes down, so the restart must take them from a worker and run them again.
      const long = await submitAll(
        system.url,
        Array.from({ length: 2 }, () => ({ rows: 10_000, estimated_runtime_sec: 1_500, priority: 'high' })),
      );
      const accepted = [...long, ...(await submitAll(system.url, mixedJobs(200), 50))];
      await eventually(
        async () => {
          const succeeded = await jobIdsIn(system.url, 'succeeded');
          const running = await jobIdsIn(system.url, 'running');
          return succeeded.length >= 10 && long.some((id) => running.includes(id)) ? true : undefined;
        },
        90_000,
        'some jobs to succeed, and a long one to run, before the restart',
      );

      await run('rabbitmqctl', ['stop']);
      // The broker is down: every job not finished now was in flight when it stopped.
      const notTerminal = new Set(
        (
          await Promise.all(JOB_STATES.filter((s) => !isTerminal(s)).map((status) => jobIdsIn(system.url, status)))
        ).flat(),
      );
      const inFlightAtStop = accepted.filter((jobId) => notTerminal.has(jobId));
      expect(inFlightAtStop.length).toBeGreaterThan(0);

      // Accepted while the broker is down: stored, then published by the reconciler once it is back.
      const duringOutage = submitAll(system.url, mixedJobs(20), 20);
      await startRabbitMq();
      accepted.push(...(await duringOutage));

      const views = await waitTerminal(system.url, accepted, 180_000);
      expect(views.filter((v) => v.status !== 'succeeded')).toEqual([]);
      for (const view of views) await expectVerifiedResult(system.url, view);
      // A job running on a worker when its channel closed was handed back and run again: its history
      // shows the retry and a second start, and it still has one result.
      const runAgain = views.filter(
        (v) =>
          inFlightAtStop.includes(v.job_id) &&
          v.history.some((h) => h.status === 'retrying') &&
          v.history.filter((h) => h.status === 'running').length >= 2,
      );
      expect(runAgain.length).toBeGreaterThan(0);

      const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('results');
      const resultBlobs: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: 'results/' })) resultBlobs.push(blob.name);
      expect(resultBlobs.sort()).toEqual(accepted.map((jobId) => `results/${jobId}.json`).sort());

      system.child.kill('SIGTERM');
      expect(await system.exited).toEqual({ code: 0, signal: null });
    } finally {
      await azurite.close();
      // Leave the broker running for whatever comes next, whatever happened above.
      if (!(await isListening(5672))) {
        const starting = await run('rabbitmqctl', ['ping']).then(
          () => true,
          () => false,
        );
        if (starting) await awaitRabbitMq();
        else await startRabbitMq();
      }
    }
  });
});
