/**
 * Azure Batch REST calls per batch-pool job: the real batch submitter, with the Azure Batch backend
 * (the real `@azure/batch` SDK), against the local Batch server, which counts every request. A
 * stand-in for the pool's nodes runs each task as Batch would: the workers' task runner, as a
 * process, with the task's environment, then reports its exit code. Jobs are in PGlite and the
 * queue is in-process: only the Batch calls are measured.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { startBatchSubmitter } from '@orch/batch-submitter';
import { dispatchJobs } from '@orch/core';
import { createAzureBatchBackend } from '@orch/platform/azure-batch';
import { createFsBlobStore } from '@orch/platform/fs-blob';
import { createMemoryTransport } from '@orch/platform/memory';
import { createPgliteJobStore } from '@orch/platform/postgres';
import { startBatchTestServer } from '@orch/platform/test-servers';
import { makeQueuedJob } from '@orch/platform/testing';
import { removeDir } from '@orch/platform/harness';
import { ROOT, sleep } from './lib.ts';

const TASK_RUNNER = path.join(ROOT, 'services/workers/src/task-runner.ts');

export async function batchCallsPerThousandJobs(count: number): Promise<{ calls: number; perThousand: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'orch-bench-batch-'));
  const server = await startBatchTestServer();
  const logger = pino({ level: 'warn' });
  const store = await createPgliteJobStore({});
  // The task runner's fs blob store (BLOB_STORE=fs) keeps blobs under DATA_DIR/blobs.
  const blobs = createFsBlobStore({ rootDir: path.join(dir, 'blobs') });
  const transport = createMemoryTransport();
  const backend = await createAzureBatchBackend({
    accountUrl: server.url,
    poolIds: { ml: 'ml', batch: 'batch' },
    jobIdPrefix: 'orch',
    taskCommandLine: `node ${TASK_RUNNER}`,
    taskEnvironment: { LOG_LEVEL: 'warn', BLOB_STORE: 'fs', DATA_DIR: dir, SIMULATED_DURATION_FACTOR: '0' },
    logger,
    credentials: {
      signRequest: (request) => {
        request.headers.set('authorization', 'Bearer bench');
        return Promise.resolve(request);
      },
    },
  });
  // The pool's nodes: start each new task, run it, report how it exited.
  let nodes = true;
  const running = new Set<string>();
  const pool = (async () => {
    while (nodes) {
      for (const task of server.tasks.values()) {
        if (task.state !== 'active' || running.has(task.id)) continue;
        running.add(task.id);
        server.start(task.id);
        void promisify(execFile)(process.execPath, [TASK_RUNNER], {
          env: { ...process.env, ...task.environment },
        }).then(
          () => server.complete(task.id, 0),
          () => server.complete(task.id, 1, { code: 'TaskFailed', message: 'the task runner failed' }),
        );
      }
      await sleep(20);
    }
  })();
  const submitter = await startBatchSubmitter(
    { store, transport, blobs, backend, logger },
    { pools: ['batch-jobs'], pollIntervalInMs: 1000, lingerInMs: 250 },
  );
  try {
    const jobs = Array.from({ length: count }, () => makeQueuedJob('batch-jobs', { rows: 100 }));
    await store.createJobs(jobs);
    await dispatchJobs(transport, jobs, new Date());
    const deadline = Date.now() + 300_000;
    for (;;) {
      const counts = await store.countByState();
      if (counts.failed > 0) throw new Error(`${counts.failed} batch job(s) failed`);
      if (counts.succeeded === count) break;
      if (Date.now() > deadline) throw new Error(`batch scenario timed out: ${JSON.stringify(counts)}`);
      await sleep(100);
    }
    const calls = server.requests.length;
    return { calls, perThousand: (calls * 1000) / count };
  } finally {
    await submitter.close();
    nodes = false;
    await pool;
    await backend.close();
    await transport.close();
    await store.close();
    await server.close();
    await removeDir(dir);
  }
}
