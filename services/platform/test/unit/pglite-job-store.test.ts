import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import type { Job } from '@orch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteJobStore, createPgliteSqlClient, createPostgresJobStore } from '../../src/postgres/index.ts';
import { describeJobStoreContract } from '../../src/testing/index.ts';

// PGlite takes ~2 s to start, so the contract shares one in-memory database per file: each test's
// store is fresh, over the same schema (migrations run again and find nothing to do).
let db: PGlite;
beforeAll(async () => {
  db = await PGlite.create();
}, 30_000);
afterAll(async () => {
  await db.close();
});

describeJobStoreContract('PGlite (in memory)', () =>
  createPostgresJobStore({ ...createPgliteSqlClient(db), close: () => Promise.resolve() }),
);

describe('createPgliteJobStore', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = join(await mkdtemp(join(tmpdir(), 'orch-pglite-')), 'nested', 'db');
  });
  afterAll(async () => {
    await rm(join(dataDir, '..', '..'), { recursive: true, force: true });
  });

  it('given a new dataDir, then the database is created and runs with the configured shared_buffers', async () => {
    const dir = join(dataDir, '..', 'sized');
    const store = await createPgliteJobStore({ dataDir: dir, sharedBuffers: '24MB' });
    await store.createJobs([job()]);
    await store.close();

    const conf = await readFile(join(dir, 'postgresql.conf'), 'utf8');
    expect(conf).toMatch(/^shared_buffers = '24MB'$/m);
    expect(await readFile(join(dir, 'PG_VERSION'), 'utf8')).toMatch(/^\d+/);
  }, 60_000);

  it('when jobs are written to a dataDir and the store is reopened, then they read back unchanged', async () => {
    const jobs = Array.from({ length: 3 }, (_, i) => job({ rows: i }));
    const first = await createPgliteJobStore({ dataDir });
    await first.createJobs(jobs);
    const updated = await first.updateJob({ ...jobs[0]!, state: 'queued' }, { ifVersion: 1 });
    await first.close();

    const second = await createPgliteJobStore({ dataDir });
    try {
      const read = await second.getJobs(jobs.map((j) => j.id));
      expect(read.sort((a, b) => a.rows - b.rows)).toStrictEqual([updated, jobs[1], jobs[2]]);
    } finally {
      await second.close();
    }
  }, 60_000);

  it('when closed, then ping and queries fail with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    const store = await createPgliteJobStore();
    await store.close();
    await store.close(); // idempotent
    await expect(store.ping()).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
    await expect(store.getJob('x')).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
  }, 30_000);
});

describe('PostgresJobStore on PGlite: bulk writes', () => {
  it('when 1,000 jobs are created in one call and 200 updated, then every write reads back', async () => {
    const store = await createPostgresJobStore({ ...createPgliteSqlClient(db), close: () => Promise.resolve() });
    const jobs = Array.from({ length: 1000 }, () => job());

    await store.createJobs(jobs);
    for (const j of jobs.slice(0, 200)) await store.updateJob({ ...j, state: 'queued' }, { ifVersion: j.version });

    const queued = await store.getJob(jobs[0]!.id);
    const untouched = await store.getJob(jobs[999]!.id);
    expect(queued?.state).toBe('queued');
    expect(untouched?.state).toBe('submitted');
  }, 30_000);
});

function job(overrides: Partial<Job> = {}): Job {
  const at = new Date().toISOString();
  return {
    id: randomUUID(),
    tenant: '',
    state: 'submitted',
    version: 1,
    priority: 'normal',
    rows: 1000,
    estimatedRuntimeSec: 10,
    latencySensitive: false,
    type: 'synthetic',
    data: { n: 1 },
    decision: null,
    attempts: 0,
    maxAttempts: 3,
    error: null,
    resultKey: null,
    batchTaskId: null,
    createdAt: at,
    updatedAt: at,
    heartbeatAt: null,
    nextAttemptAt: null,
    history: [{ status: 'submitted', at }],
    ...overrides,
  };
}
