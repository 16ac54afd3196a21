/** The scenarios, run against our system (embedded or local mode) started fresh for each. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '@orch/platform/harness';
import { offerAtRate } from './reference-bullmq.ts';
import {
  ACTOR_JOB,
  ROOT,
  dispatchLatencies,
  jobCounts,
  listAllJobs,
  peakRssInMb,
  percentile,
  rssInMb,
  sampleSpaced,
  postJson,
  seconds,
  sleep,
  startMode,
  submitBulk,
  submitSingles,
  waitFinished,
} from './lib.ts';
import type { Mode, System } from './lib.ts';

async function withSystem<T>(mode: Mode, env: Record<string, string>, run: (system: System) => Promise<T>): Promise<T> {
  const system = await startMode(mode, env);
  try {
    return await run(system);
  } finally {
    await system.stop();
  }
}

const jobs = (count: number, body: object = ACTOR_JOB): object[] => Array.from({ length: count }, () => body);

/**
 * N jobs submitted in bulk, then `singles` more one request each (none when 0): jobs/s until every
 * job succeeded.
 */
export function drain(
  mode: Mode,
  count: number,
  singles: number,
  env: Record<string, string> = {},
): Promise<{ bulk: number; single: number | undefined }> {
  return withSystem(mode, env, async (system) => {
    let started = performance.now();
    await submitBulk(system.url, jobs(count));
    await waitFinished(system.url, count, 600_000);
    const bulk = count / seconds(started);
    if (singles === 0) return { bulk, single: undefined };
    started = performance.now();
    await submitSingles(system.url, jobs(singles), 32);
    await waitFinished(system.url, count + singles, 600_000);
    return { bulk, single: singles / seconds(started) };
  });
}

export interface IngestFigures {
  singleRps: number;
  singleP50: number;
  singleP99: number;
  batchJobsPerSec: number;
  batchP50: number;
  batchP99: number;
}

async function cannon(url: string, body: object, durationInSec: number): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    connections: 32,
    duration: durationInSec,
  });
}

/**
 * autocannon at 32 connections on `POST /submit-job`, then on `POST /jobs/batch` (100 jobs per
 * request) once `settle` says the first run's jobs are worked off: each run starts from an idle
 * system, the second not still busy with the first's backlog.
 */
async function ingestAt(
  url: string,
  durationInSec: number,
  settle: (accepted: number) => Promise<void> = () => Promise.resolve(),
): Promise<IngestFigures> {
  const single = await cannon(`${url}/submit-job`, ACTOR_JOB, durationInSec);
  await settle(single['2xx']);
  const batch = await cannon(`${url}/jobs/batch`, { jobs: jobs(100) }, durationInSec);
  const ok = (r: autocannon.Result) => r['2xx'] / r.duration;
  if (single.non2xx > 0 || batch.non2xx > 0) throw new Error('ingest answered non-2xx statuses');
  return {
    singleRps: ok(single),
    singleP50: single.latency.p50,
    singleP99: single.latency.p99,
    batchJobsPerSec: ok(batch) * 100,
    batchP50: batch.latency.p50,
    batchP99: batch.latency.p99,
  };
}

export function ingest(mode: Mode, durationInSec: number): Promise<IngestFigures> {
  return withSystem(mode, {}, (system) =>
    ingestAt(system.url, durationInSec, (accepted) => waitFinished(system.url, accepted, 600_000)),
  );
}

/** The same validation on a bare fastify route, in its own process: the HTTP ceiling. */
export async function ingestBare(durationInSec: number): Promise<IngestFigures> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bench/bare-server.ts')], {
    env: { ...process.env, PORT: String(port) },
    stdio: 'inherit',
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      const up = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 200) throw new Error('bare fastify server did not start');
      await sleep(50);
    }
    return await ingestAt(url, durationInSec);
  } finally {
    child.kill('SIGTERM');
  }
}

/** Jobs offered one request each at `rate` per second for `durationInMs`: submission → start percentiles. */
export function dispatchLatency(
  mode: Mode,
  rate: number,
  durationInMs: number,
): Promise<{ p50: number; p95: number; p99: number }> {
  return withSystem(mode, {}, async (system) => {
    const total = Math.round((rate * durationInMs) / 1000);
    const offered = await offerAtRate(rate, total, async () => {
      const res = await postJson(`${system.url}/submit-job`, ACTOR_JOB);
      if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${res.text}`);
    });
    if (offered < rate * 0.9) {
      console.error(
        `[bench] ${mode}: only ${Math.round(offered)} of ${rate} jobs/s could be offered (submissions backed up)`,
      );
    }
    await waitFinished(system.url, total, 300_000);
    const latencies = dispatchLatencies(await listAllJobs(system.url));
    return { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) };
  });
}

/**
 * A backlog of `backlog` low-priority actor jobs of `jobMs` each (the pool busy), then
 * `URGENT_PROBES` urgent jobs, one at a time, `URGENT_PROBE_GAP_MS` apart: ms from each one's
 * submission to its start. One sample on a shared machine is mostly noise; the report takes the median.
 */
export function priority(mode: Mode, backlog: number, jobMs: number): Promise<number[]> {
  // Synthetic jobs wait estimated_runtime_sec × SIMULATED_DURATION_FACTOR.
  return withSystem(mode, { SIMULATED_DURATION_FACTOR: String(jobMs / 1000 / 20) }, async (system) => {
    await submitBulk(system.url, jobs(backlog, { ...ACTOR_JOB, estimated_runtime_sec: 20, priority: 'low' }));
    const waits = await sampleSpaced(URGENT_PROBES, URGENT_PROBE_GAP_MS, () => urgentStart(system.url));
    const counts = await jobCounts(system.url);
    if ((counts.queued ?? 0) + (counts.submitted ?? 0) < backlog / 10) {
      console.warn(`priority: the backlog had mostly drained (${JSON.stringify(counts)}); the figure is weak`);
    }
    return waits;
  });
}

export const URGENT_PROBES = 9;
export const URGENT_PROBE_GAP_MS = 500;
const URGENT_POLL_MS = 50;

/** Submits one urgent job and waits for it to start: ms from submission to start, as recorded. */
async function urgentStart(url: string): Promise<number> {
  const res = await postJson(`${url}/submit-job`, { ...ACTOR_JOB, estimated_runtime_sec: 0, priority: 'urgent' });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${res.text}`);
  const { job_id: id } = res.json<{ job_id: string }>();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const job = (await (await fetch(`${url}/jobs/${id}`)).json()) as {
      created_at: string;
      history: { status: string; at: string }[];
    };
    const started = job.history.find((t) => t.status === 'running');
    if (started) return Date.parse(started.at) - Date.parse(job.created_at);
    if (Date.now() > deadline) throw new Error('the urgent job never started');
    // The wait is read from the job's own timestamps, so polling slowly costs no accuracy and keeps
    // the probe's requests off a machine the backlog already keeps busy (BullMQ's probe, in
    // process, costs nothing either).
    await sleep(URGENT_POLL_MS);
  }
}

/**
 * The embedded process holding `count` queued jobs (one slot, busy): its RSS while holding them
 * (the most of five readings a second apart) and its peak over its life, ingestion included.
 */
export function memoryHolding(count: number): Promise<{ holdingInMb: number; peakInMb: number; queued: number }> {
  // One slot, busy for an hour with the first job; every other job waits, queued. The scheduler
  // classifies 64 at once (the scheduler service's default) rather than embedded mode's 16: the
  // backlog is queued ~30 s sooner, and the reading, taken once it is idle, is ~10 MB higher if
  // anything. The hour-long job would hold a graceful stop for the whole shutdown timeout: a second
  // is plenty.
  const env = {
    AUTOSCALE: 'false',
    ACTOR_CONCURRENCY: '1',
    SIMULATED_DURATION_FACTOR: '1',
    SCHEDULER_CONCURRENCY: '64',
    SHUTDOWN_TIMEOUT_MS: '1000',
  };
  return withSystem('embedded', env, async (system) => {
    await submitBulk(system.url, jobs(count, { ...ACTOR_JOB, estimated_runtime_sec: 3600 }), 1000, 2);
    const deadline = Date.now() + 600_000;
    let queued = 0;
    while (queued < count - 1) {
      if (Date.now() > deadline) throw new Error(`only ${queued} of ${count} jobs were queued`);
      // Each poll counts 100,000 rows on the one database connection the scheduler classifies
      // through (~150 ms): polling often would slow what it waits for.
      await sleep(2000);
      queued = (await jobCounts(system.url)).queued ?? 0;
    }
    let holdingInMb = 0;
    for (let i = 0; i < 5; i++) {
      holdingInMb = Math.max(holdingInMb, await rssInMb(system.pid));
      await sleep(1000);
    }
    return { holdingInMb, peakInMb: await peakRssInMb(system.pid), queued };
  });
}
