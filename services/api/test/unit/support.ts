import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INGEST_LANES, createHandlerRegistry, resultKeyFor, transition } from '@orch/core';
import type { BlobStore, Job, JobState, JobStore, QueueTransport } from '@orch/core';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { createLogger } from '@orch/platform/runtime';
import type { Logger } from '@orch/platform/runtime';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/index.ts';
import type { ApiDeps, ApiOptions } from '../../src/index.ts';
export { withOverrides } from '@orch/platform/testing';

/** The real in-process adapters, shared by the tests of one file (PGlite takes seconds to start). */
export interface Backends {
  store: JobStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

export async function createBackends(): Promise<Backends> {
  const rootDir = await mkdtemp(join(tmpdir(), 'api-test-blobs-'));
  const store = await createPgliteJobStore({});
  const blobs = createFsBlobStore({ rootDir });
  return {
    store,
    blobs,
    async close() {
      await Promise.allSettled([store.close(), blobs.close()]);
      await rm(rootDir, { recursive: true, force: true });
    },
  };
}

export const silentLogger = createLogger({ service: 'api-test', level: 'silent', format: 'json' });

export interface TestApp {
  app: FastifyInstance;
  transport: QueueTransport;
  close(): Promise<void>;
}

/** An app over the shared store and blobs, with a fresh memory transport (its depth starts at 0). */
export async function createTestApp(
  backends: Pick<Backends, 'store' | 'blobs'>,
  overrides: Partial<ApiDeps> = {},
  options: Partial<ApiOptions> = {},
): Promise<TestApp> {
  const transport = overrides.transport ?? createMemoryTransport();
  const app = await buildApp(
    {
      store: backends.store,
      blobs: backends.blobs,
      transport,
      handlers: createHandlerRegistry({ echo: (input) => Promise.resolve({ ...input.data }) }),
      logger: silentLogger,
      ...overrides,
    },
    { maxAttempts: 3, ...options },
  );
  return {
    app,
    transport,
    async close() {
      await app.close();
      await transport.close();
    },
  };
}

export const json = (response: LightMyRequestResponse): Record<string, unknown> =>
  response.json<Record<string, unknown>>();

/** POSTs `body` as JSON. */
export function postJson(app: FastifyInstance, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
}

export async function totalJobs(store: JobStore): Promise<number> {
  const counts = await store.countByState();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Whether the store recorded the job's message as sent (the reconciler skips it then). */
export async function isMarkedDispatched(store: JobStore, id: string): Promise<boolean> {
  const pending = await store.findJobsToRecover({
    undispatchedBefore: new Date(Date.now() + 3_600_000),
    heartbeatBefore: new Date(0),
    limit: 10_000,
  });
  return !pending.some((job) => job.id === id);
}

export interface LogEntry {
  level: string;
  args: unknown[];
}

/** A logger that records what it is given, to check what reaches the logs (and what does not). */
export function createRecordingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (): Record<string, unknown> => {
    const logger: Record<string, unknown> = { level: 'trace' };
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      logger[level] = (...args: unknown[]) => {
        entries.push({ level, args });
      };
    }
    logger['child'] = () => make();
    return logger;
  };
  return { logger: make() as unknown as Logger, entries };
}

/** Messages in the ingest queue, both lanes. */
export async function ingestDepth(transport: QueueTransport): Promise<number> {
  let total = 0;
  for (const lane of INGEST_LANES) {
    const depth = await transport.getQueueDepth(lane.queue);
    total += depth.active + depth.scheduled + depth.deadLetter;
  }
  return total;
}

/** Moves a stored job along the lifecycle to `target`, the way the scheduler and workers would. */
export async function advanceJob(store: JobStore, id: string, path: readonly JobState[]): Promise<Job> {
  let job = await store.getJob(id);
  if (!job) throw new Error(`no job ${id}`);
  for (const state of path) {
    const patch: Partial<Job> =
      state === 'queued'
        ? { decision: { queue: 'batch-jobs', cost: 1.5, reason: 'cost 1.5 <= 4' } }
        : state === 'running'
          ? { attempts: job.attempts + 1 }
          : state === 'succeeded'
            ? { resultKey: resultKeyFor(id) }
            : state === 'failed'
              ? { error: { code: 'HANDLER_FAILED', message: 'boom' } }
              : {};
    const next = transition(job, state, { at: new Date(), patch });
    const stored = await store.updateJob(next, { ifVersion: job.version });
    if (!stored) throw new Error(`lost a race advancing ${id}`);
    job = stored;
  }
  return job;
}
