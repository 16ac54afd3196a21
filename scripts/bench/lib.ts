import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPgSandbox, createRabbitMqSandbox, freePort, removeDir, startSystem } from '@orch/platform/harness';
import type { Sandbox } from '@orch/platform/harness';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** The job every throughput scenario submits: the synthetic computation on 1,000 rows, routed to the actor pool. */
export const ACTOR_JOB = { rows: 1_000, latency_sensitive: true, estimated_runtime_sec: 1, type: 'synthetic' } as const;

export type Mode = 'embedded' | 'local';

/**
 * Settings every system in the run gets, set once by `main.ts`: the same worker concurrency as the
 * BullMQ reference's one worker, and a fixed number of worker processes (no autoscaling).
 */
export const systemTuning: Record<string, string> = {};

export interface System {
  mode: Mode;
  url: string;
  pid: number;
  /** Everything the system printed (warnings and errors only: LOG_LEVEL=warn). */
  output: () => string;
  stop(): Promise<void>;
}

/**
 * Starts the embedded system, or the local system (its own RabbitMQ virtual host, PostgreSQL
 * database and Azurite), as a user would, with logging at `warn` (the benchmark measures the
 * pipeline, not the terminal) and no simulated job duration.
 */
export async function startMode(mode: Mode, env: Record<string, string> = {}): Promise<System> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `orch-bench-${mode}-`));
  const sandboxes: Sandbox[] = [];
  // The load generator is one client on loopback: per-client rate limits and the live-job quota
  // would measure the limits, not the pipeline.
  const common = {
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SIMULATED_DURATION_FACTOR: '0',
    RATE_LIMIT_MAX: '0',
    TENANT_MAX_LIVE_JOBS: '0',
    ...systemTuning,
    ...env,
  };
  let main = path.join(ROOT, 'services/embedded/src/main.ts');
  const nodeArgs = mode === 'embedded' ? await nodeFlagsOfStartScript() : [];
  let modeEnv: Record<string, string> = {};
  if (mode === 'local') {
    const vhost = await createRabbitMqSandbox({ prefix: 'orch-bench' });
    const database = await createPgSandbox(undefined, 'orch_bench');
    sandboxes.push(vhost, database);
    main = path.join(ROOT, 'services/local/src/main.ts');
    modeEnv = {
      RABBITMQ_URL: vhost.url,
      DATABASE_URL: database.url,
      AZURITE_BLOB_PORT: String(await freePort()),
      OPS_PORT: '0',
    };
  }
  const system = await startSystem(main, { ...common, ...modeEnv }, 120_000, nodeArgs);
  return {
    mode,
    url: system.url,
    pid: system.child.pid ?? 0,
    output: system.output,
    async stop() {
      if (system.child.exitCode === null && system.child.signalCode === null) system.child.kill('SIGTERM');
      const timer = setTimeout(() => void system.killAll(), 60_000);
      await system.exited;
      clearTimeout(timer);
      await system.killAll(); // anything the system started that is still running
      for (const sandbox of sandboxes.reverse()) await sandbox.close().catch(() => undefined);
      await removeDir(dataDir);
    },
  };
}

/**
 * The Node and V8 flags `npm start` gives the embedded system (its memory settings), so the
 * benchmark runs it as users do.
 */
async function nodeFlagsOfStartScript(): Promise<string[]> {
  const { scripts } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  return (scripts.start ?? '').split(/\s+/).filter((arg) => arg.startsWith('--') && !arg.startsWith('--env-file'));
}

/** Keep-alive connections for the load generator's requests. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface JsonResponse {
  status: number;
  /** The body as text. */
  text: string;
  json<T>(): T;
}

/**
 * POSTs JSON over keep-alive `node:http`. The load generator shares the two cores with the system
 * it measures: `fetch` costs 3-5× the CPU per request (about 0.3-0.5 ms here against 0.1 ms).
 */
export function postJson(url: string, body: unknown): Promise<JsonResponse> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text, json: <T>() => JSON.parse(text) as T });
        });
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

/** Takes `count` samples one after another, `gapInMs` apart. */
export async function sampleSpaced<T>(count: number, gapInMs: number, sample: () => Promise<T>): Promise<T[]> {
  const samples: T[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(gapInMs);
    samples.push(await sample());
  }
  return samples;
}

/** Runs `task(i)` for i in [0, count) with at most `parallel` at once. */
export async function forEachLimited(
  count: number,
  parallel: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Submits jobs through `POST /jobs/batch`, `chunk` per request, `parallel` requests at once. */
export async function submitBulk(url: string, jobs: readonly object[], chunk = 500, parallel = 4): Promise<string[]> {
  const ids: string[][] = [];
  await forEachLimited(Math.ceil(jobs.length / chunk), parallel, async (i) => {
    const res = await postJson(`${url}/jobs/batch`, { jobs: jobs.slice(i * chunk, (i + 1) * chunk) });
    if (res.status !== 202) throw new Error(`bulk submit answered ${res.status}: ${res.text}`);
    ids[i] = res.json<{ job_ids: string[] }>().job_ids;
  });
  return ids.flat();
}

/** Submits jobs one `POST /submit-job` each, `connections` at once. */
export async function submitSingles(url: string, jobs: readonly object[], connections = 32): Promise<string[]> {
  const ids: string[] = [];
  await forEachLimited(jobs.length, connections, async (i) => {
    const res = await postJson(`${url}/submit-job`, jobs[i]);
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${res.text}`);
    ids[i] = res.json<{ job_id: string }>().job_id;
  });
  return ids;
}

export async function jobCounts(url: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/stats`);
  if (!res.ok) throw new Error(`GET /stats answered ${res.status}`);
  return ((await res.json()) as { jobs: Record<string, number> }).jobs;
}

/** Waits until `count` jobs are terminal (polling `GET /stats`); throws when any failed or on timeout. */
export async function waitFinished(url: string, count: number, timeoutInMs: number): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const counts = await jobCounts(url);
    if ((counts.failed ?? 0) > 0) throw new Error(`${counts.failed} job(s) failed`);
    if ((counts.succeeded ?? 0) + (counts.cancelled ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${JSON.stringify(counts)} of ${count}`);
    // Each poll is a count over the jobs table: often enough to time a drain, not so often that the
    // poll is what the database spends its time on.
    await sleep(100);
  }
}

interface JobView {
  job_id: string;
  status: string;
  created_at: string;
  history: { status: string; at: string }[];
}

/** Every job of the system (newest first), paged through `GET /jobs`. */
export async function listAllJobs(url: string): Promise<JobView[]> {
  const jobs: JobView[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await fetch(`${url}/jobs?${query}`);
    const page = (await res.json()) as { jobs: JobView[]; next_cursor: string | null };
    jobs.push(...page.jobs);
    cursor = page.next_cursor;
  } while (cursor);
  return jobs;
}

/** Submission → first start of each job, in ms (from its recorded transitions). */
export function dispatchLatencies(jobs: readonly JobView[]): number[] {
  return jobs.flatMap((job) => {
    const started = job.history.find((t) => t.status === 'running');
    return started ? [Date.parse(started.at) - Date.parse(job.created_at)] : [];
  });
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/** Resident set size of a process now (VmRSS), in MB. */
export async function rssInMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Peak resident set size of a process (VmHWM), in MB. */
export async function peakRssInMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Peak RSS summed over a process and all its descendants, in MB (local mode runs several processes). */
export async function treeRssInMb(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
  }
  let total = 0;
  const visit = async (p: number): Promise<void> => {
    total += await peakRssInMb(p).catch(() => 0);
    for (const child of parents.get(p) ?? []) await visit(child);
  };
  await visit(pid);
  return total;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const seconds = (fromInMs: number): number => (performance.now() - fromInMs) / 1000;
