import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeSyntheticAggregates } from '@orch/core';
import { eventually, startSystem, type RunningSystem } from './embedded-process.ts';

interface JobView {
  job_id: string;
  status: string;
  queue: string | null;
  rows: number;
  attempts: number;
  history: { status: string; at: string }[];
  error: { code: string; message: string } | null;
}

const post = async (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const getJob = async (base: string, id: string): Promise<JobView> =>
  (await (await fetch(`${base}/jobs/${id}`)).json()) as JobView;

async function waitTerminal(base: string, ids: readonly string[], timeoutInMs: number): Promise<JobView[]> {
  return eventually(
    async () => {
      const views = await Promise.all(ids.map((id) => getJob(base, id)));
      return views.every((v) => ['succeeded', 'failed', 'cancelled'].includes(v.status)) ? views : undefined;
    },
    timeoutInMs,
    `${ids.length} jobs to finish`,
  );
}

async function expectVerifiedResult(base: string, view: JobView): Promise<void> {
  expect(view.status).toBe('succeeded');
  expect(view.history.filter((h) => h.status === 'succeeded')).toHaveLength(1);
  const res = await fetch(`${base}/jobs/${view.job_id}/result`);
  expect(res.status).toBe(200);
  const result = (await res.json()) as Record<string, unknown>;
  const expected = computeSyntheticAggregates(view.job_id, view.rows);
  expect(result).toMatchObject({ ...expected });
}

const dataDirs: string[] = [];
const systems: RunningSystem[] = [];

afterAll(async () => {
  for (const s of systems) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await Promise.all(dataDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'orch-e2e-'));
  dataDirs.push(dir);
  return dir;
}

const FAST = {
  SIMULATED_DURATION_FACTOR: '0',
  BATCH_LINGER_MS: '50',
  BATCH_POLL_INTERVAL_MS: '200',
  RECONCILE_INTERVAL_MS: '1000',
  RETRY_BASE_DELAY_MS: '100',
};

describe('embedded system, as a separate process over HTTP', () => {
  it('classifies, routes, runs and stores a verifiable result on all four routes, then drains on SIGTERM', async () => {
    const system = await startSystem({ ...FAST, DATA_DIR: await newDataDir() });
    systems.push(system);
    const submissions = {
      'actor-jobs': { rows: 5_000, latency_sensitive: true },
      'spark-jobs': { rows: 200_000, estimated_runtime_sec: 101 }, // cost 10.2
      'ml-jobs': { rows: 30_000, estimated_runtime_sec: 50 }, // cost 5.03
      'batch-jobs': { rows: 1_000, estimated_runtime_sec: 10 }, // cost 1.001
    };
    const ids = new Map<string, string>();
    for (const [queue, body] of Object.entries(submissions)) {
      const res = await post(`${system.url}/submit-job`, body);
      expect(res.status).toBe(202);
      const json = (await res.json()) as { job_id: string; status: string };
      expect(json.status).toBe('submitted');
      ids.set(queue, json.job_id);
    }

    const views = await waitTerminal(system.url, [...ids.values()], 60_000);
    for (const [queue, id] of ids) {
      const view = views.find((v) => v.job_id === id)!;
      expect(view.queue).toBe(queue);
      expect(view.history.map((h) => h.status)).toEqual(['submitted', 'queued', 'running', 'succeeded']);
      await expectVerifiedResult(system.url, view);
    }

    system.child.kill('SIGTERM');
    expect(await system.exited).toEqual({ code: 0, signal: null });
  });

  it('keeps every accepted job through a SIGKILL: after a restart each ends succeeded with exactly one result', async () => {
    const dataDir = await newDataDir();
    // Some simulated duration so that work is in flight when the process is killed.
    const env = { ...FAST, DATA_DIR: dataDir, SIMULATED_DURATION_FACTOR: '0.01', ACTOR_CONCURRENCY: '4' };
    const first = await startSystem(env);
    systems.push(first);

    const jobs = Array.from({ length: 120 }, (_, i) => {
      switch (i % 4) {
        case 0:
          return { rows: 2_000 + i, latency_sensitive: true, estimated_runtime_sec: 5 };
        case 1:
          return { rows: 3_000 + i, estimated_runtime_sec: 110 };
        case 2:
          return { rows: 4_000 + i, estimated_runtime_sec: 45, priority: 'low' };
        default:
          return { rows: 1_000 + i, estimated_runtime_sec: 2, priority: 'urgent' };
      }
    });
    const accepted: string[] = [];
    for (let i = 0; i < jobs.length; i += 40) {
      const res = await post(`${first.url}/jobs/batch`, { jobs: jobs.slice(i, i + 40) });
      expect(res.status).toBe(202);
      accepted.push(...((await res.json()) as { job_ids: string[] }).job_ids);
    }
    // Kill once some work is done and some is not.
    const doneBeforeKill = await eventually(
      async () => {
        const res = await fetch(`${first.url}/jobs?status=succeeded&limit=500`);
        const page = (await res.json()) as { jobs: unknown[] };
        return page.jobs.length >= 5 ? page.jobs.length : undefined;
      },
      60_000,
      'some jobs to succeed',
    );
    first.child.kill('SIGKILL');
    await first.exited;
    expect(doneBeforeKill).toBeLessThan(accepted.length);

    const second = await startSystem(env);
    systems.push(second);
    const views = await waitTerminal(second.url, accepted, 90_000);
    expect(second.output()).toContain('recovered unfinished jobs from the previous run');
    expect(views.filter((v) => v.status !== 'succeeded')).toEqual([]);
    for (const view of views) await expectVerifiedResult(second.url, view);
    const resultFiles = await readdir(path.join(dataDir, 'blobs', 'results'));
    expect(resultFiles.filter((f) => f.endsWith('.json')).sort()).toEqual(accepted.map((id) => `${id}.json`).sort());

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });
});
