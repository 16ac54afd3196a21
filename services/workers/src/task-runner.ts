/**
 * The batch task runner: the command line of an Azure Batch task (and of the local batch backend's
 * child processes). It runs every job of the task given in `ORCH_TASK_SPEC`, writes each succeeded
 * job's result blob, then the task's manifest of per-job outcomes, and exits 0. A non-zero exit means
 * the task itself broke; the batch submitter then retries all of its jobs.
 */
import { z } from 'zod';
import {
  batchManifestKey,
  createHandlerRegistry,
  isOrchestratorError,
  resultKeyFor,
  TASK_SPEC_ENV,
  toJobFailure,
} from '@orch/core';
import type { BatchJobOutcome, BatchTaskJob, BatchTaskManifest, BatchTaskSpec } from '@orch/core';
import { blobConfig, createLogger, executionConfig, logConfig, parseConfig } from '@orch/platform/runtime';
import { createBlobStore } from '@orch/platform/wiring';
import { executeHandler } from './execute.ts';

const config = parseConfig(
  logConfig
    .extend(executionConfig.shape)
    .extend(blobConfig.shape)
    .extend({
      TASK_JOB_CONCURRENCY: z.coerce.number().int().positive().default(4),
    }),
  process.env,
);
const logger = createLogger({ service: 'task-runner', level: config.LOG_LEVEL, format: 'json' });
const blobs = await createBlobStore(config);
const spec = await readSpec();

/** The spec comes inline, or as a claim check to a blob when it was too large for the environment. */
async function readSpec(): Promise<BatchTaskSpec> {
  let spec = JSON.parse(process.env[TASK_SPEC_ENV] ?? 'null') as BatchTaskSpec | null;
  if (spec?.specKey) {
    const bytes = await blobs.downloadBlob(spec.specKey);
    spec = bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as BatchTaskSpec) : null;
  }
  if (!spec || typeof spec.id !== 'string' || !Array.isArray(spec.jobs)) {
    logger.fatal(`${TASK_SPEC_ENV} is missing or does not hold a task spec`);
    process.exit(2);
  }
  return spec;
}

const handlers = createHandlerRegistry();
const outcomes: BatchJobOutcome[] = [];

async function runOne(job: BatchTaskJob): Promise<BatchJobOutcome> {
  try {
    const result = await executeHandler(
      job.type,
      {
        jobId: job.jobId,
        rows: job.rows,
        estimatedRuntimeSec: job.estimatedRuntimeSec,
        data: job.data,
        attempt: job.attempt,
      },
      {
        handlers,
        signal: new AbortController().signal,
        timeoutInMs: config.JOB_TIMEOUT_MS,
        simulatedDurationFactor: config.SIMULATED_DURATION_FACTOR,
      },
    );
    const resultKey = resultKeyFor(job.jobId);
    await blobs.uploadBlob(resultKey, JSON.stringify(result), { contentType: 'application/json' });
    return { jobId: job.jobId, status: 'succeeded', resultKey };
  } catch (e) {
    logger.warn({ jobId: job.jobId, err: e }, 'job failed in batch task');
    return {
      jobId: job.jobId,
      status: 'failed',
      error: toJobFailure(e),
      retryable: !isOrchestratorError(e) || e.retryable,
    };
  }
}

const queue = [...spec.jobs];
await Promise.all(
  Array.from({ length: Math.min(config.TASK_JOB_CONCURRENCY, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) outcomes.push(await runOne(job));
  }),
);
const manifest: BatchTaskManifest = { taskId: spec.id, outcomes };
await blobs.uploadBlob(batchManifestKey(spec.id), JSON.stringify(manifest), { contentType: 'application/json' });
await blobs.close();
logger.info({ taskId: spec.id, jobs: outcomes.length }, 'batch task done');
