import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startAzurite, type RunningAzurite } from '@orch/platform/test-servers';
import {
  createPgSandbox,
  createRabbitMqSandbox,
  eventually,
  expectVerifiedResult,
  isListening,
  mixedJobs,
  startSystem,
  submitAll,
  waitTerminal,
  type JobView,
  type RunningSystem,
  type Sandbox,
  removeDir,
} from '@orch/platform/testing';

/**
 * Fault drills in local mode (every service its own process, RabbitMQ, PostgreSQL, Azurite): a
 * worker SIGKILLed mid-job, PostgreSQL restarted mid-run, blob writes failing for a while, the
 * scheduler killed between recording a decision and publishing it. After each, every accepted job
 * must end `succeeded` with exactly one result, and no job may run again once it has finished.
 */
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const run = promisify(execFile);

const serversUp = (await isListening(5672)) && (await isListening(5432)) && (await isListening(15672));
if (!serversUp && process.env.CI !== 'true') {
  console.warn('fault drills skipped: RabbitMQ (5672, management 15672) or PostgreSQL (5432) is not running here');
}

const BASE = {
  BATCH_LINGER_MS: '50',
  BATCH_POLL_INTERVAL_MS: '200',
  RECONCILE_INTERVAL_MS: '1000',
  DISPATCH_GRACE_MS: '3000',
  RETRY_BASE_DELAY_MS: '200',
  HEARTBEAT_INTERVAL_MS: '500',
  HEARTBEAT_TIMEOUT_MS: '4000',
  JOB_MAX_ATTEMPTS: '5',
  AUTOSCALE: 'false',
  WORKER_CONCURRENCY: '4',
  OPS_PORT: '0',
};

interface Drill {
  system: RunningSystem;
  azurite: RunningAzurite;
  /** The connection string the services use (maybe through a proxy). */
  blobConnectionString: string;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(async () => {
  // Whatever a drill did, leave PostgreSQL running for the rest of the run.
  if (!(await isListening(5432))) await pgctl('start');
});

async function pgctl(action: 'restart' | 'start'): Promise<void> {
  await run('bash', ['-c', `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -1) main ${action}`], {
    timeout: 60_000,
  });
  await eventually(async () => ((await isListening(5432)) ? true : undefined), 60_000, 'PostgreSQL to listen');
}

/** A local-mode system in a RabbitMQ virtual host and a database of its own, with its own Azurite. */
async function startDrill(
  env: Record<string, string>,
  blobProxy?: (azurite: RunningAzurite) => Promise<string>,
): Promise<Drill> {
  const vhost: Sandbox = await createRabbitMqSandbox({ prefix: 'orch-drill' });
  cleanups.push(() => vhost.close());
  const database: Sandbox = await createPgSandbox(undefined, 'orch_drill');
  cleanups.push(() => database.close());
  const azurite = await startAzurite({ inMemory: true, blobPort: 0 });
  cleanups.push(() => azurite.close());
  const blobConnectionString = blobProxy ? await blobProxy(azurite) : azurite.connectionString;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'orch-drill-'));
  cleanups.push(() => removeDir(dataDir));
  const system = await startSystem(
    MAIN,
    {
      ...BASE,
      DATA_DIR: dataDir,
      RABBITMQ_URL: vhost.url,
      DATABASE_URL: database.url,
      AZURE_STORAGE_CONNECTION_STRING: blobConnectionString,
      ...env,
    },
    90_000,
  );
  cleanups.push(async () => {
    await system.killAll();
  });
  return { system, azurite, blobConnectionString };
}

/**
 * Every job succeeded exactly once: one `succeeded`, last in its history; as many starts as
 * attempts (a duplicate message never started finished work again); its result verified; and
 * exactly one result blob per job, none for anything else.
 */
async function expectEachJobDoneOnce(drill: Drill, ids: readonly string[]): Promise<JobView[]> {
  const views = await waitTerminal(drill.system.url, ids, 150_000).catch(async (e: unknown) => {
    // Say where the jobs are stuck, and what the services said last.
    const stuck: Record<string, number> = {};
    for (const id of ids) {
      const view = (await (await fetch(`${drill.system.url}/jobs/${id}`)).json()) as JobView;
      stuck[`${view.status} ${view.queue}`] = (stuck[`${view.status} ${view.queue}`] ?? 0) + 1;
    }
    throw new Error(`${String(e)}\njobs: ${JSON.stringify(stuck)}\n${drill.system.output().slice(-6000)}`);
  });
  expect(views.filter((v) => v.status !== 'succeeded').map((v) => [v.job_id, v.status, v.error])).toEqual([]);
  for (const view of views) {
    const statuses = view.history.map((h) => h.status);
    expect(statuses.at(-1), view.job_id).toBe('succeeded');
    expect(statuses.filter((s) => s === 'running').length, view.job_id).toBe(view.attempts);
    await expectVerifiedResult(drill.system.url, view);
  }
  const container = BlobServiceClient.fromConnectionString(drill.azurite.connectionString).getContainerClient(
    'results',
  );
  const blobs: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: 'results/' })) blobs.push(blob.name);
  expect(blobs.sort()).toEqual(ids.map((id) => `results/${id}.json`).sort());
  return views;
}

/** The pid of the latest process the launcher started for `service` (its JSON log says). */
function pidOf(system: RunningSystem, service: string): number {
  const pids = system
    .output()
    .split('\n')
    .filter((line) => line.includes(`"started ${service}"`))
    .map((line) => (JSON.parse(line) as { pid: number }).pid);
  const pid = pids.at(-1);
  if (pid === undefined) throw new Error(`no ${service} started:\n${system.output()}`);
  return pid;
}

/**
 * What the services log when the job database goes away under them: a pooled connection the
 * restart terminated, the store's translation of a lost connection, or a handler waiting for the
 * database to come back.
 */
const DATABASE_LOST =
  /idle database connection failed|job database (?:unavailable|unreachable)|a dependency is unavailable; waiting for it/;

/** Jobs not finished yet (submitted, queued, running or retrying), up to 500 each. */
async function countUnfinished(system: RunningSystem): Promise<number> {
  const counts = await Promise.all(
    ['submitted', 'queued', 'running', 'retrying'].map((status) => countByStatus(system, status)),
  );
  return counts.reduce((sum, n) => sum + n, 0);
}

async function countByStatus(system: RunningSystem, status: string, queue?: string): Promise<number> {
  const query = `status=${status}&limit=500${queue ? `&queue=${queue}` : ''}`;
  const page = (await (await fetch(`${system.url}/jobs?${query}`)).json()) as { jobs: unknown[] };
  return page.jobs.length;
}

/**
 * A TCP proxy that can be made to fail: while down it resets every connection, old and new.
 * `refused` counts the connections it reset while down that were opened during the outage: proof
 * that the system tried to reach the target while it was failing.
 */
async function startFaultyProxy(
  target: number,
): Promise<{ port: number; refused(): number; down(isDown: boolean): void; close(): Promise<void> }> {
  let isDown = false;
  let refused = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (isDown) {
      refused += 1;
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: target });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    refused: () => refused,
    down(value) {
      isDown = value;
      if (value) for (const socket of sockets) socket.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!serversUp && process.env.CI !== 'true')('fault drills (local mode)', { timeout: 240_000 }, () => {
  it('a worker SIGKILLed mid-job: its jobs run again elsewhere, each ends succeeded with one result', async () => {
    // Actor jobs of 0.5 s (5 s × 0.1), four at a time: the kill lands while some are running.
    const drill = await startDrill({ SIMULATED_DURATION_FACTOR: '0.1' });
    const jobs = Array.from({ length: 40 }, (_, i) => ({
      rows: 1_000 + i,
      latency_sensitive: true,
      estimated_runtime_sec: 5,
    }));
    const ids = await submitAll(drill.system.url, jobs, 40);
    await eventually(
      async () =>
        (await countByStatus(drill.system, 'succeeded')) >= 4 &&
        (await countByStatus(drill.system, 'running', 'actor-jobs')) > 0
          ? true
          : undefined,
      60_000,
      'actor jobs running after a few succeeded',
    );
    const victim = pidOf(drill.system, 'actor-worker');
    process.kill(victim, 'SIGKILL');

    const views = await expectEachJobDoneOnce(drill, ids);
    // The jobs it was running were started again: the kill really was mid-job.
    expect(views.some((v) => v.attempts >= 2)).toBe(true);
    expect(drill.system.output()).toContain('actor-worker exited unexpectedly');
    expect(pidOf(drill.system, 'actor-worker')).not.toBe(victim);
  });

  it('PostgreSQL restarted mid-run: every accepted job ends succeeded with one result', async () => {
    const drill = await startDrill({ SIMULATED_DURATION_FACTOR: '0.004' });
    const ids = await submitAll(drill.system.url, mixedJobs(120), 40);
    // Restart while work is in flight: some jobs done, others still queued, running or retrying.
    await eventually(
      async () =>
        (await countByStatus(drill.system, 'succeeded')) >= 10 && (await countUnfinished(drill.system)) > 0
          ? true
          : undefined,
      90_000,
      'some jobs to succeed, and others still to be in progress, before the restart',
    );
    const outputBefore = drill.system.output().length;
    await pgctl('restart');
    // Accepted after the restart too: the API's pool reconnects.
    ids.push(
      ...(await eventually(
        async () => {
          const res = await fetch(`${drill.system.url}/jobs/batch`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ jobs: mixedJobs(20) }),
          });
          return res.status === 202 ? ((await res.json()) as { job_ids: string[] }).job_ids : undefined;
        },
        60_000,
        'the API to accept jobs again',
      )),
    );
    await expectEachJobDoneOnce(drill, ids);
    // The restart really hit the services: they logged losing their database connections.
    expect(drill.system.output().slice(outputBefore)).toMatch(DATABASE_LOST);
  });

  it('blob writes failing for a while: results are written once storage is back, exactly one per job', async () => {
    let proxy: Awaited<ReturnType<typeof startFaultyProxy>> | undefined;
    const drill = await startDrill({ SIMULATED_DURATION_FACTOR: '0.004' }, async (azurite) => {
      const port = Number(new URL(azurite.blobEndpoint).port);
      proxy = await startFaultyProxy(port);
      cleanups.push(() => proxy!.close());
      return azurite.connectionString.replace(`:${port}/`, `:${proxy.port}/`);
    });
    const ids = await submitAll(drill.system.url, mixedJobs(80), 40);
    await eventually(
      async () => ((await countByStatus(drill.system, 'succeeded')) >= 5 ? true : undefined),
      90_000,
      'some jobs to succeed before storage fails',
    );
    proxy!.down(true);
    ids.push(...(await submitAll(drill.system.url, mixedJobs(20), 20)));
    // The outage lasts until the services have tried storage during it (results, task specs), and
    // then a while longer, so their retries meet it too.
    await eventually(() => (proxy!.refused() > 0 ? true : undefined), 60_000, 'a blob write during the outage');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    proxy!.down(false);
    const refusedDuringOutage = proxy!.refused();
    await expectEachJobDoneOnce(drill, ids);
    expect(refusedDuringOutage).toBeGreaterThan(0);
  });

  it('the scheduler killed between recording a decision and publishing it: the job is published again and runs once', async () => {
    const onceDir = await mkdtemp(path.join(tmpdir(), 'orch-failpoints-'));
    cleanups.push(() => removeDir(onceDir));
    const drill = await startDrill({
      SIMULATED_DURATION_FACTOR: '0.004',
      ORCH_FAILPOINTS: 'scheduler.after-decision:10',
      ORCH_FAILPOINTS_ONCE_DIR: onceDir,
    });
    const ids = await submitAll(drill.system.url, mixedJobs(60), 60);

    const views = await expectEachJobDoneOnce(drill, ids);
    expect(drill.system.output()).toContain('failpoint scheduler.after-decision fired');
    expect(drill.system.output()).toContain('scheduler exited unexpectedly');
    // Re-published messages met jobs already queued, running or done: none ran twice.
    expect(views.filter((v) => v.attempts !== 1).map((v) => v.job_id)).toEqual([]);
  });
});
