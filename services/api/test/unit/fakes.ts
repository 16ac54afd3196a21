import { JOB_STATES, OrchestratorError } from '@orch/core';
import type { BlobStore, Job, JobPage, JobQuery, JobState, JobStore } from '@orch/core';

/** Minimal in-test JobStore (used until the PGlite adapter is available). */
export function createFakeJobStore(): JobStore {
  const jobs = new Map<string, Job>();
  const dispatched = new Set<string>();
  const copy = (job: Job): Job => structuredClone(job);
  return {
    createJobs(list) {
      if (list.some((job) => jobs.has(job.id))) return Promise.reject(new OrchestratorError('CONFLICT', 'exists'));
      for (const job of list) jobs.set(job.id, copy(job));
      return Promise.resolve();
    },
    getJob: (id) => Promise.resolve(jobs.has(id) ? copy(jobs.get(id)!) : undefined),
    getJobs: (ids) => Promise.resolve(ids.flatMap((id) => (jobs.has(id) ? [copy(jobs.get(id)!)] : []))),
    updateJob(job, { ifVersion }) {
      const current = jobs.get(job.id);
      if (!current || current.version !== ifVersion) return Promise.resolve(undefined);
      const stored = { ...copy(job), version: ifVersion + 1 };
      jobs.set(job.id, stored);
      return Promise.resolve(copy(stored));
    },
    queryJobs(query: JobQuery): Promise<JobPage> {
      const all = [...jobs.values()]
        .filter((j) => (query.state === undefined || j.state === query.state) && (query.queue === undefined || j.decision?.queue === query.queue))
        .reverse();
      const start = query.cursor === undefined ? 0 : Number(query.cursor);
      if (!Number.isInteger(start)) return Promise.reject(new OrchestratorError('VALIDATION_FAILED', 'invalid cursor'));
      const page = all.slice(start, start + query.limit).map(copy);
      return Promise.resolve({ jobs: page, nextCursor: start + query.limit < all.length ? String(start + query.limit) : null });
    },
    markDispatched(ids) {
      for (const id of ids) dispatched.add(id);
      return Promise.resolve();
    },
    recordHeartbeat: () => Promise.resolve([]),
    findJobsToRecover: () => Promise.resolve([]),
    countByState() {
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const job of jobs.values()) counts[job.state]++;
      return Promise.resolve(counts);
    },
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

export function createFakeBlobStore(): BlobStore {
  const blobs = new Map<string, Uint8Array>();
  return {
    uploadBlob(key, data) {
      blobs.set(key, typeof data === 'string' ? new TextEncoder().encode(data) : data);
      return Promise.resolve();
    },
    downloadBlob: (key) => Promise.resolve(blobs.get(key)),
    deleteBlob(key) {
      blobs.delete(key);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
