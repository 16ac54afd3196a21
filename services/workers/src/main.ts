import { createHandlerRegistry } from '@orch/core';
import { createLogger, onShutdown, toRetryPolicy } from '@orch/platform/runtime';
import { assertStandaloneCapable, createBlobStore, createJobStore, createTransport } from '@orch/platform/wiring';
import { loadWorkerConfig } from './config.ts';
import { startWorker } from './worker.ts';

const config = loadWorkerConfig(process.env);
const logger = createLogger({ service: `${config.WORKER_POOL}-worker`, level: config.LOG_LEVEL });
assertStandaloneCapable(config, 'workers');
const store = await createJobStore(config, logger);
const transport = await createTransport(config);
const blobs = await createBlobStore(config);
const subscription = await startWorker(
  { store, transport, blobs, handlers: createHandlerRegistry(), logger },
  {
    pool: config.WORKER_POOL === 'actor' ? 'actor-jobs' : 'spark-jobs',
    concurrency: config.WORKER_CONCURRENCY,
    jobTimeoutInMs: config.JOB_TIMEOUT_MS,
    heartbeatIntervalInMs: config.HEARTBEAT_INTERVAL_MS,
    retryPolicy: toRetryPolicy(config),
    simulatedDurationFactor: config.SIMULATED_DURATION_FACTOR,
  },
);
logger.info({ pool: config.WORKER_POOL, concurrency: config.WORKER_CONCURRENCY }, 'worker started');
onShutdown(logger, [() => subscription.close(), () => transport.close(), () => blobs.close(), () => store.close()], {
  timeoutInMs: config.SHUTDOWN_TIMEOUT_MS,
});
