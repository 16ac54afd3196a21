import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  eventually,
  expectVerifiedResult,
  mixedJobs,
  ONE_JOB_PER_ROUTE,
  postJson as post,
  startSystem as startProcess,
  submitAll,
  waitTerminal,
  type RunningSystem,
  removeDir,
} from '@orch/platform/testing';

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const startSystem = (env: Record<string, string>): Promise<RunningSystem> => startProcess(MAIN, env);

const dataDirs: string[] = [];
const systems: RunningSystem[] = [];

afterAll(async () => {
  await Promise.all(systems.map((s) => s.killAll()));
  await Promise.all(dataDirs.map(removeDir));
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
    const submissions = ONE_JOB_PER_ROUTE;
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

    const accepted = await submitAll(first.url, mixedJobs(120), 40);
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
