import { createLogger, onShutdown, toClassifierOptions, toRetryPolicy } from '@orch/platform/runtime';
import { assertStandaloneCapable, createJobStore, createTransport } from '@orch/platform/wiring';
import { loadSchedulerConfig } from './config.ts';
import { createReconciler } from './reconciler.ts';
import { startScheduler } from './scheduler.ts';

const config = loadSchedulerConfig(process.env);
const logger = createLogger({ service: 'scheduler', level: config.LOG_LEVEL });
assertStandaloneCapable(config, 'scheduler');
const store = await createJobStore(config, logger);
const transport = await createTransport(config);
const subscription = await startScheduler(
  { store, transport, logger },
  { classifier: toClassifierOptions(config), concurrency: config.SCHEDULER_CONCURRENCY },
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
onShutdown(
  logger,
  [() => subscription.close(), () => reconciler.stop(), () => transport.close(), () => store.close()],
  { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS },
);
