import { createLogger, onShutdown, startOpsServer, toClassifierOptions, toRetryPolicy } from '@orch/platform/runtime';
import { assertStandaloneCapable, createJobStore, createTransport } from '@orch/platform/wiring';
import { loadSchedulerConfig } from './config.ts';
import { createReconciler } from './reconciler.ts';
import { startScheduler } from './scheduler.ts';
import { createPrometheusMetrics } from '@orch/platform/metrics';

const config = loadSchedulerConfig(process.env);
const logger = createLogger({ service: 'scheduler', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
assertStandaloneCapable(config, 'scheduler');
const store = await createJobStore(config, logger);
const metrics = createPrometheusMetrics({ service: 'scheduler' });
const ops = await startOpsServer({
  port: config.OPS_PORT,
  host: config.OPS_HOST,
  logger,
  readinessChecks: { store: () => store.ping() },
  metrics,
});
const transport = await createTransport(config, logger);
const subscription = await startScheduler(
  { store, transport, metrics, logger },
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
  [
    () => Promise.resolve(ops.setReady(false)),
    () => subscription.close(),
    () => reconciler.stop(),
    () => transport.close(),
    () => store.close(),
    () => ops.close(),
  ],
  { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS },
);
