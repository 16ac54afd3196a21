import { createLogger, onShutdown, startOpsServer, toRetryPolicy } from '@orch/platform/runtime';
import {
  assertStandaloneCapable,
  createBatchBackend,
  createBlobStore,
  createJobStore,
  createTransport,
} from '@orch/platform/wiring';
import { startBatchSubmitter } from './batch-submitter.ts';
import { loadBatchSubmitterConfig } from './config.ts';
import { createPrometheusMetrics } from '@orch/platform/metrics';

const config = loadBatchSubmitterConfig(process.env);
const logger = createLogger({ service: 'batch-submitter', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
assertStandaloneCapable(config, 'batch-submitter');
const store = await createJobStore(config, logger);
const metrics = createPrometheusMetrics({ service: 'batch-submitter' });
const ops = await startOpsServer({
  port: config.OPS_PORT,
  host: config.OPS_HOST,
  logger,
  readinessChecks: { store: () => store.ping() },
  metrics,
});
const transport = await createTransport(config, logger);
const blobs = await createBlobStore(config);
const backend = await createBatchBackend(config, logger);
const submitter = await startBatchSubmitter(
  { store, transport, blobs, backend, metrics, logger },
  {
    maxJobsPerTask: config.BATCH_MAX_JOBS_PER_TASK,
    lingerInMs: config.BATCH_LINGER_MS,
    pollIntervalInMs: config.BATCH_POLL_INTERVAL_MS,
    retryPolicy: toRetryPolicy(config),
    taskCapacity: backend.kind === 'local' ? config.BATCH_MAX_CONCURRENT_TASKS : 0,
  },
);
logger.info({ backend: backend.kind }, 'batch submitter started');
onShutdown(
  logger,
  [
    () => Promise.resolve(ops.setReady(false)),
    () => submitter.close(),
    () => backend.close(),
    () => transport.close(),
    () => blobs.close(),
    () => store.close(),
    () => ops.close(),
  ],
  { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS },
);
