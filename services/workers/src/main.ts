import { createHandlerRegistry } from '@orch/core';
import { createLogger, onShutdown, startOpsServer, toRetryPolicy } from '@orch/platform/runtime';
import { assertStandaloneCapable, createBlobStore, createJobStore, createTransport } from '@orch/platform/wiring';
import { loadWorkerConfig } from './config.ts';
import { startWorker } from './worker.ts';
import { createPrometheusMetrics } from '@orch/platform/metrics';

const config = loadWorkerConfig(process.env);
const logger = createLogger({
  service: `${config.WORKER_POOL}-worker`,
  level: config.LOG_LEVEL,
  format: config.LOG_FORMAT,
});
assertStandaloneCapable(config, 'workers');
const store = await createJobStore(config, logger);
const metrics = createPrometheusMetrics({ service: `${config.WORKER_POOL}-worker` });
const ops = await startOpsServer({
  port: config.OPS_PORT,
  host: config.OPS_HOST,
  logger,
  readinessChecks: { store: () => store.ping() },
  metrics,
});
const transport = await createTransport(config, logger);
const blobs = await createBlobStore(config);
const subscription = await startWorker(
  { store, transport, blobs, handlers: createHandlerRegistry(), metrics, logger },
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
onShutdown(
  logger,
  [
    () => Promise.resolve(ops.setReady(false)),
    () => subscription.close(),
    () => transport.close(),
    () => blobs.close(),
    () => store.close(),
    () => ops.close(),
  ],
  {
    timeoutInMs: config.SHUTDOWN_TIMEOUT_MS,
  },
);
