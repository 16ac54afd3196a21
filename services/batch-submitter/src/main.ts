import { createLogger, onShutdown, toRetryPolicy } from '@orch/platform/runtime';
import {
  assertStandaloneCapable,
  createBatchBackend,
  createBlobStore,
  createJobStore,
  createTransport,
} from '@orch/platform/wiring';
import { startBatchSubmitter } from './batch-submitter.ts';
import { loadBatchSubmitterConfig } from './config.ts';

const config = loadBatchSubmitterConfig(process.env);
const logger = createLogger({ service: 'batch-submitter', level: config.LOG_LEVEL });
assertStandaloneCapable(config, 'batch-submitter');
const store = await createJobStore(config, logger);
const transport = await createTransport(config);
const blobs = await createBlobStore(config);
const backend = await createBatchBackend(config, logger);
const submitter = await startBatchSubmitter(
  { store, transport, blobs, backend, logger },
  {
    maxJobsPerTask: config.BATCH_MAX_JOBS_PER_TASK,
    lingerInMs: config.BATCH_LINGER_MS,
    pollIntervalInMs: config.BATCH_POLL_INTERVAL_MS,
    retryPolicy: toRetryPolicy(config),
  },
);
logger.info({ backend: backend.kind }, 'batch submitter started');
onShutdown(
  logger,
  [() => submitter.close(), () => backend.close(), () => transport.close(), () => blobs.close(), () => store.close()],
  { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS },
);
