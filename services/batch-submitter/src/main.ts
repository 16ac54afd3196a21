import { toRetryPolicy } from '@orch/platform/runtime';
import { startConsumerService } from '@orch/platform/service';
import { createBatchBackend, createBlobStore } from '@orch/platform/wiring';
import { startBatchSubmitter } from './batch-submitter.ts';
import { loadBatchSubmitterConfig } from './config.ts';

const config = loadBatchSubmitterConfig(process.env);
const { logger, store, transport, metrics, stopOnShutdown } = await startConsumerService(config, 'batch-submitter');
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
stopOnShutdown({ drain: [() => submitter.close()], close: [() => backend.close(), () => blobs.close()] });
