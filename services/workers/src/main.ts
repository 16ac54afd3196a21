import { createHandlerRegistry } from '@orch/core';
import { toRetryPolicy } from '@orch/platform/runtime';
import { startConsumerService } from '@orch/platform/service';
import { createBlobStore } from '@orch/platform/wiring';
import { loadWorkerConfig } from './config.ts';
import { startWorker } from './worker.ts';

const config = loadWorkerConfig(process.env);
const { logger, store, transport, metrics, stopOnShutdown } = await startConsumerService(
  config,
  `${config.WORKER_POOL}-worker`,
);
const blobs = await createBlobStore(config);
const subscription = await startWorker(
  { store, transport, blobs, handlers: createHandlerRegistry(), metrics, logger },
  {
    pool: config.WORKER_POOL === 'actor' ? 'actor-jobs' : 'spark-jobs',
    concurrency: config.WORKER_CONCURRENCY,
    priorityHeadroom: config.PRIORITY_HEADROOM,
    jobTimeoutInMs: config.JOB_TIMEOUT_MS,
    heartbeatIntervalInMs: config.HEARTBEAT_INTERVAL_MS,
    retryPolicy: toRetryPolicy(config),
    simulatedDurationFactor: config.SIMULATED_DURATION_FACTOR,
  },
);
logger.info({ pool: config.WORKER_POOL, concurrency: config.WORKER_CONCURRENCY }, 'worker started');
stopOnShutdown({ drain: [() => subscription.close()], close: [() => blobs.close()] });
