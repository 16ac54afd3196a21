import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { activeMessagesOfLanes, createHandlerRegistry, dispatchJobs, POOL_SCALING } from '@orch/core';
import type { BlobStore, JobStore, QueueTransport } from '@orch/core';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { startAutoscaling } from '@orch/platform/runtime';
import type { Autoscaling } from '@orch/platform/runtime';
import { makeQueuedJob } from '@orch/platform/testing';
import { createWorkerReplicaSet } from '@orch/workers';

const logger = pino({ level: 'silent' });

describe('autoscaled worker replicas (embedded mode)', () => {
  let store: JobStore;
  let blobs: BlobStore;
  let blobDir: string;
  let transport: QueueTransport;
  let autoscaling: Autoscaling | undefined;
  let release: () => void;
  let released: Promise<void>;

  beforeEach(async () => {
    store = await createPgliteJobStore({});
    blobDir = await mkdtemp(path.join(tmpdir(), 'orch-replicas-'));
    blobs = createFsBlobStore({ rootDir: blobDir });
    transport = createMemoryTransport({ lockDurationInMs: 30_000 });
    released = new Promise((resolve) => (release = resolve));
  });
  afterEach(async () => {
    release();
    await autoscaling?.stop();
    await transport.close();
    await store.close();
    await rm(blobDir, { recursive: true, force: true });
  });

  it('given a backlog, then replicas follow KEDA’s rule up to ceil(active / 5) and back down when it drains', async () => {
    // Jobs block until released, so the 40 messages stay active (waiting or locked) meanwhile.
    const handlers = createHandlerRegistry({ blocking: () => released.then(() => ({ ok: true })) });
    const replicas = createWorkerReplicaSet(
      { store, transport, blobs, handlers, logger },
      { pool: 'actor-jobs', concurrency: 2, heartbeatIntervalInMs: 50 },
    );
    autoscaling = await startAutoscaling({
      pool: 'actor-jobs',
      // No window and no pace limits (their own tests are in core), so the test sees each step at once.
      rule: { ...POOL_SCALING['actor-jobs'], scaleDownStabilizationInMs: 0, scaleUp: undefined, scaleDown: undefined },
      readActive: () => activeMessagesOfLanes(transport, 'actor-jobs'),
      replicas,
      intervalInMs: 25,
      logger,
    });
    expect(replicas.count()).toBe(1);

    const jobs = Array.from({ length: 40 }, () => ({ ...makeQueuedJob('actor-jobs'), type: 'blocking' }));
    await store.createJobs(jobs);
    await dispatchJobs(transport, jobs, new Date());

    await vi.waitFor(() => expect(replicas.count()).toBe(8), { timeout: 10_000, interval: 20 });
    // Each replica reports its presence, as each pod would.
    await vi.waitFor(
      async () => {
        const workers = await store.listWorkers(new Date(Date.now() - 10_000));
        expect(workers.filter((w) => w.pool === 'actor-jobs')).toHaveLength(8);
      },
      { timeout: 10_000, interval: 20 },
    );

    release();

    await vi.waitFor(
      async () => {
        const finished = await store.getJobs(jobs.map((j) => j.id));
        expect(finished.filter((j) => j.state === 'succeeded')).toHaveLength(40);
      },
      { timeout: 20_000, interval: 20 },
    );
    await vi.waitFor(() => expect(replicas.count()).toBe(1), { timeout: 10_000, interval: 20 });
    await autoscaling.stop();
    await replicas.close();
    expect(await store.listWorkers(new Date(0))).toStrictEqual([]);
  });
});
