import { toClassifierOptions, toRetryPolicy } from '@orch/platform/runtime';
import { startConsumerService } from '@orch/platform/service';
import { loadSchedulerConfig } from './config.ts';
import { createReconciler } from './reconciler.ts';
import { startScheduler } from './scheduler.ts';

const config = loadSchedulerConfig(process.env);
const { logger, store, transport, metrics, stopOnShutdown } = await startConsumerService(config, 'scheduler');
const subscription = await startScheduler(
  { store, transport, metrics, logger },
  {
    classifier: toClassifierOptions(config),
    concurrency: config.SCHEDULER_CONCURRENCY,
    priorityHeadroom: config.PRIORITY_HEADROOM,
  },
);
const reconciler = createReconciler(
  { store, transport, logger },
  {
    retryPolicy: toRetryPolicy(config),
    intervalInMs: config.RECONCILE_INTERVAL_MS,
    dispatchGraceInMs: config.DISPATCH_GRACE_MS,
    heartbeatTimeoutInMs: config.HEARTBEAT_TIMEOUT_MS,
  },
);
reconciler.start();
logger.info({ transport: transport.kind }, 'scheduler started');
stopOnShutdown({ drain: [() => subscription.close(), () => reconciler.stop()] });
