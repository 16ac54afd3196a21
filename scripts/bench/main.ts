/**
 * `npm run bench`: our pipeline (embedded and local mode) beside BullMQ on Redis, the bare HTTP
 * ceiling and the raw broker ceiling, in one run on loopback. Prints a table and writes
 * `bench-results/latest.json` and `latest.md`. See README "Performance".
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { batchCallsPerThousandJobs } from './batch-calls.ts';
import { rawAzuriteUploadRate } from './blob-ceiling.ts';
import { rawRabbitMqRate } from './broker-ceiling.ts';
import { percentile, ROOT, systemTuning } from './lib.ts';
import type { Mode } from './lib.ts';
import { bullmqDispatchLatency, bullmqDrain, bullmqPriority } from './reference-bullmq.ts';
import {
  dispatchLatency,
  drain,
  ingest,
  ingestBare,
  memoryHolding,
  priority,
  URGENT_PROBE_GAP_MS,
  URGENT_PROBES,
} from './scenarios.ts';
import { formatMarkdown, formatTable } from './report.ts';
import type { Figure } from './report.ts';

const SCENARIOS = ['drain', 'ingest', 'dispatch', 'priority', 'broker', 'memory', 'batch'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values: flags } = parseArgs({
  options: {
    jobs: { type: 'string', default: '5000' },
    singles: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '64' },
    duration: { type: 'string', default: '3' },
    backlog: { type: 'string', default: '10000' },
    'memory-jobs': { type: 'string', default: '100000' },
    modes: { type: 'string', default: 'embedded,local' },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    out: { type: 'string', default: 'bench-results' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  console.log(`npm run bench -- [options]

  --jobs N           jobs in the end-to-end drain (default 5000)
  --singles N        jobs submitted one request each after the drain (default 1000)
  --concurrency N    jobs one worker runs at once, BullMQ's and each of our pools' (default 64);
                     our worker pools run as one process each, like BullMQ's one worker
  --duration S       seconds of each ingest run and each fixed offered load (default 3)
  --backlog N        low-priority jobs ahead of the urgent one (default 10000)
  --memory-jobs N    queued jobs held by the embedded process for the memory figure (default 100000)
  --modes LIST       embedded,local (default both)
  --scenarios LIST   ${SCENARIOS.join(',')} (default all)
  --out DIR          where latest.json and latest.md go (default bench-results)`);
  process.exit(0);
}

const int = (name: keyof typeof flags): number => {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
};
const count = int('jobs');
const singles = int('singles');
const concurrency = int('concurrency');
const durationInSec = int('duration');
const backlog = int('backlog');
const memoryJobs = int('memory-jobs');
const modeList = String(flags.modes).split(',');
const scenarioList = String(flags.scenarios).split(',');
for (const mode of modeList) if (mode !== 'embedded' && mode !== 'local') throw new Error(`unknown mode ${mode}`);
for (const s of scenarioList)
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}`);
const modes = modeList as Mode[];
Object.assign(systemTuning, {
  AUTOSCALE: 'false',
  WORKER_CONCURRENCY: String(concurrency),
  ACTOR_CONCURRENCY: String(concurrency),
  SPARK_CONCURRENCY: String(concurrency),
});
const scenarios = new Set(scenarioList as Scenario[]);

const figures: Figure[] = [];
const startedAt = new Date();
const log = (message: string): void =>
  console.error(`[bench +${Math.round((Date.now() - startedAt.getTime()) / 1000)}s] ${message}`);
const perMode = async <T>(what: string, run: (mode: Mode) => Promise<T>): Promise<Partial<Record<Mode, T>>> => {
  const results: Partial<Record<Mode, T>> = {};
  for (const mode of modes) {
    log(`${what}: ${mode}`);
    results[mode] = await run(mode);
  }
  return results;
};

if (scenarios.has('drain')) {
  const ours = await perMode('end-to-end drain', (mode) => drain(mode, count, singles));
  log('end-to-end drain: BullMQ');
  const reference = await bullmqDrain(count, concurrency);
  figures.push(
    {
      scenario: `end-to-end drain, ${count} jobs bulk-submitted`,
      unit: 'jobs/s',
      embedded: ours.embedded?.bulk,
      local: ours.local?.bulk,
      reference,
      referenceName: 'BullMQ',
      target: { text: '≥ BullMQ (local)', met: (f) => typeof f.local === 'number' && f.local >= reference },
    },
    {
      scenario: `end-to-end, ${singles} jobs one POST each`,
      unit: 'jobs/s',
      embedded: ours.embedded?.single,
      local: ours.local?.single,
    },
  );
  if (modes.includes('local')) {
    // What Azurite costs: the same drain with results in files (BLOB_STORE=fs) instead.
    log('end-to-end drain: local, results in files');
    const files = await drain('local', count, 0, { BLOB_STORE: 'fs' });
    figures.push({
      scenario: `end-to-end drain, ${count} jobs, local with results in files`,
      unit: 'jobs/s',
      local: files.bulk,
      reference,
      referenceName: 'BullMQ',
    });
  }
}

if (scenarios.has('ingest')) {
  const ours = await perMode('ingest', (mode) => ingest(mode, durationInSec));
  log('ingest: bare fastify');
  const bare = await ingestBare(durationInSec);
  figures.push(
    {
      scenario: 'ingest POST /submit-job',
      unit: 'req/s',
      embedded: ours.embedded?.singleRps,
      local: ours.local?.singleRps,
      reference: bare.singleRps,
      referenceName: 'bare fastify',
    },
    {
      scenario: 'ingest POST /submit-job p50 / p99',
      unit: 'ms',
      embedded: ours.embedded && [ours.embedded.singleP50, ours.embedded.singleP99],
      local: ours.local && [ours.local.singleP50, ours.local.singleP99],
      reference: [bare.singleP50, bare.singleP99],
      referenceName: 'bare fastify',
    },
    {
      scenario: 'ingest POST /jobs/batch (100 per request)',
      unit: 'jobs/s',
      embedded: ours.embedded?.batchJobsPerSec,
      local: ours.local?.batchJobsPerSec,
      reference: bare.batchJobsPerSec,
      referenceName: 'bare fastify',
      target: { text: '≥ 5,000 (local)', met: (f) => (typeof f.local === 'number' ? f.local : 0) >= 5_000 },
    },
    {
      scenario: 'ingest POST /jobs/batch p50 / p99',
      unit: 'ms',
      embedded: ours.embedded && [ours.embedded.batchP50, ours.embedded.batchP99],
      local: ours.local && [ours.local.batchP50, ours.local.batchP99],
      reference: [bare.batchP50, bare.batchP99],
      referenceName: 'bare fastify',
    },
  );
}

if (scenarios.has('dispatch')) {
  for (const rate of [200, 1000]) {
    const ours = await perMode(`dispatch latency at ${rate}/s`, (mode) =>
      dispatchLatency(mode, rate, durationInSec * 1000),
    );
    log(`dispatch latency at ${rate}/s: BullMQ`);
    const reference = await bullmqDispatchLatency(rate, durationInSec * 1000, concurrency);
    const triple = (l?: { p50: number; p95: number; p99: number }) => l && [l.p50, l.p95, l.p99];
    figures.push({
      scenario: `dispatch latency p50 / p95 / p99 at ${rate} jobs/s`,
      unit: 'ms',
      embedded: triple(ours.embedded),
      local: triple(ours.local),
      reference: triple(reference),
      referenceName: 'BullMQ',
      ...(rate === 200 && {
        target: {
          text: 'p99 < 50 ms (local)',
          met: (f: Figure) => Array.isArray(f.local) && (f.local[2] ?? Infinity) < 50,
        },
      }),
    });
  }
}

if (scenarios.has('priority')) {
  const jobMs = 200;
  const ours = await perMode('priority', (mode) => priority(mode, backlog, jobMs));
  log('priority: BullMQ');
  const reference = await bullmqPriority(backlog, jobMs, concurrency, URGENT_PROBES, URGENT_PROBE_GAP_MS);
  const median = (waits: number[] | undefined) => (waits === undefined ? undefined : percentile(waits, 50));
  for (const [name, waits] of [...Object.entries(ours), ['BullMQ', reference] as const]) {
    log(`priority: ${name}: urgent jobs started after ${waits?.join(', ')} ms`);
  }
  figures.push({
    scenario: `urgent job start behind ${backlog} low jobs (${jobMs} ms each), median of ${URGENT_PROBES}`,
    unit: 'ms',
    embedded: median(ours.embedded),
    local: median(ours.local),
    reference: median(reference),
    referenceName: 'BullMQ',
    target: { text: '< 100 ms (local)', met: (f) => typeof f.local === 'number' && f.local < 100 },
  });
}

if (scenarios.has('broker') && modes.includes('local')) {
  log('broker ceiling: raw RabbitMQ');
  const raw = await rawRabbitMqRate(Math.max(20_000, count * 4));
  const drained = figures.find((f) => f.scenario.startsWith('end-to-end drain'));
  figures.push({
    scenario: 'broker ceiling: raw publish + consume (quorum queue)',
    unit: 'msg/s',
    reference: raw,
    referenceName: 'raw RabbitMQ',
    local: typeof drained?.local === 'number' ? drained.local : undefined,
    target: { text: 'pipeline ≥ 50% of raw (local)', met: (f) => typeof f.local === 'number' && f.local >= raw / 2 },
  });
  log('blob ceiling: raw Azurite uploads');
  const uploads = await rawAzuriteUploadRate(Math.max(2_000, count));
  figures.push({
    scenario: 'blob ceiling: result uploads to Azurite (SDK, 64 at once)',
    unit: 'blobs/s',
    reference: uploads,
    referenceName: 'raw Azurite',
    local: typeof drained?.local === 'number' ? drained.local : undefined,
  });
}

if (scenarios.has('batch')) {
  log('batch path: Azure Batch REST calls per 1,000 batch jobs');
  const batch = await batchCallsPerThousandJobs(1_000);
  figures.push({
    scenario: 'Azure Batch REST calls per 1,000 batch-pool jobs (local Batch server)',
    unit: 'calls',
    local: batch.perThousand,
    target: { text: '≤ 11', met: (f) => typeof f.local === 'number' && f.local <= 11 },
  });
}

if (scenarios.has('memory')) {
  log(`memory: embedded holding ${memoryJobs} queued jobs`);
  const memory = await memoryHolding(memoryJobs);
  figures.push(
    {
      scenario: `embedded RSS holding ${memory.queued} queued jobs`,
      unit: 'MB',
      embedded: memory.holdingInMb,
      target: { text: '< 300 MB', met: (f) => typeof f.embedded === 'number' && f.embedded < 300 },
    },
    {
      scenario: `embedded peak RSS over its life (ingesting them included)`,
      unit: 'MB',
      embedded: memory.peakInMb,
    },
  );
}

const machine = {
  cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
  memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  node: process.version,
  platform: `${os.type()} ${os.release()}`,
};
const options = { count, singles, concurrency, durationInSec, backlog, memoryJobs, modes };
console.log(formatTable(figures));
const out = path.resolve(ROOT, String(flags.out));
await mkdir(out, { recursive: true });
const report = {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  machine,
  options,
  figures: figures.map(({ target, ...f }) => ({ ...f, target: target?.text, met: target?.met(f) })),
};
await writeFile(path.join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
await writeFile(path.join(out, 'latest.md'), formatMarkdown(figures, machine, options));
log(`reports written to ${path.relative(ROOT, out)}/latest.{json,md}`);
