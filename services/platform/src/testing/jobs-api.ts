import { expect } from 'vitest';
import { computeSyntheticAggregates } from '@orch/core';
import { eventually } from './fixtures.ts';

/** What the end-to-end tests read of `GET /jobs/{id}`. */
export interface JobView {
  job_id: string;
  status: string;
  queue: string | null;
  rows: number;
  attempts: number;
  history: { status: string; at: string }[];
  error: { code: string; message: string } | null;
}

export const postJson = async (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export const getJob = async (base: string, id: string): Promise<JobView> =>
  (await (await fetch(`${base}/jobs/${id}`)).json()) as JobView;

/** Submits through `POST /jobs/batch` in chunks and returns the accepted ids, in order. */
export async function submitAll(base: string, jobs: readonly object[], chunk = 100): Promise<string[]> {
  const accepted: string[] = [];
  for (let i = 0; i < jobs.length; i += chunk) {
    const res = await postJson(`${base}/jobs/batch`, { jobs: jobs.slice(i, i + chunk) });
    expect(res.status).toBe(202);
    accepted.push(...((await res.json()) as { job_ids: string[] }).job_ids);
  }
  return accepted;
}

/** Waits until every job is succeeded, failed or cancelled, and returns their views. */
export async function waitTerminal(base: string, ids: readonly string[], timeoutInMs: number): Promise<JobView[]> {
  return eventually(
    async () => {
      const views: JobView[] = [];
      for (let i = 0; i < ids.length; i += 50) {
        views.push(...(await Promise.all(ids.slice(i, i + 50).map((id) => getJob(base, id)))));
      }
      return views.every((v) => ['succeeded', 'failed', 'cancelled'].includes(v.status)) ? views : undefined;
    },
    timeoutInMs,
    `${ids.length} jobs to finish`,
  );
}

/** The job succeeded exactly once and its stored result is the one anyone can recompute. */
export async function expectVerifiedResult(base: string, view: JobView): Promise<void> {
  expect(view.status).toBe('succeeded');
  expect(view.history.filter((h) => h.status === 'succeeded')).toHaveLength(1);
  const res = await fetch(`${base}/jobs/${view.job_id}/result`);
  expect(res.status).toBe(200);
  const result = (await res.json()) as Record<string, unknown>;
  expect(result).toMatchObject({ ...computeSyntheticAggregates(view.job_id, view.rows) });
}

/** One job per route, with the queue the classifier must pick for it. */
export const ONE_JOB_PER_ROUTE = {
  'actor-jobs': { rows: 5_000, latency_sensitive: true },
  'spark-jobs': { rows: 200_000, estimated_runtime_sec: 101 }, // cost 10.2
  'ml-jobs': { rows: 30_000, estimated_runtime_sec: 50 }, // cost 5.03
  'batch-jobs': { rows: 1_000, estimated_runtime_sec: 10 }, // cost 1.001
} as const;

/** A mix over all four routes and priorities, `count` jobs long. */
export function mixedJobs(count: number): object[] {
  return Array.from({ length: count }, (_, i) => {
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
}
