import { buildApp, loadApiOptions } from '@orch/api';
import { startBatchSubmitter } from '@orch/batch-submitter';
import { activeMessagesOfLanes, createHandlerRegistry } from '@orch/core';
import type { Subscription } from '@orch/core';
import { startAutoscaling, toClassifierOptions, toRetryPolicy, toScalingRule } from '@orch/platform/runtime';
import type { Autoscaling, Logger } from '@orch/platform/runtime';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { createBatchBackend, createBlobStore, createJobStore, createTransport } from '@orch/platform/wiring';
import { createReconciler, startScheduler } from '@orch/scheduler';
import { createWorkerReplicaSet, startWorker, TASK_RUNNER_PATH } from '@orch/workers';
import type { EmbeddedConfig } from './config.ts';

export interface EmbeddedSystem {
  /** The API's address, e.g. http://127.0.0.1:8000 */
  url: string;
  /** The drain steps, in order: stop intake, finish in-flight work, close connections. */
  shutdownSteps: (() => Promise<unknown>)[];
}

/**
 * Starts every service in this process: the API, the scheduler and reconciler, actor and spark
 * workers, and the batch submitter with the local batch backend. State lives under DATA_DIR, so a
 * restart (even after SIGKILL) picks up every accepted job: the first reconcile pass re-dispatches
 * all unfinished jobs, since the in-process queues died with the previous process.
 */
export async function startEmbedded(config: EmbeddedConfig, logger: Logger): Promise<EmbeddedSystem> {
  const store = await createJobStore(config, logger);
  const blobs = await createBlobStore(config);
  const transport = await createTransport(config, logger);
  const backend = await createBatchBackend({ ...config, TASK_RUNNER_PATH }, logger);
  const handlers = createHandlerRegistry();
  const retryPolicy = toRetryPolicy(config);
  const metrics = createPrometheusMetrics({ service: 'embedded' });

  const reconciler = createReconciler(
    { store, transport, logger },
    {
      retryPolicy,
      intervalInMs: config.RECONCILE_INTERVAL_MS,
      dispatchGraceInMs: config.DISPATCH_GRACE_MS,
      heartbeatTimeoutInMs: config.HEARTBEAT_TIMEOUT_MS,
    },
  );
  const recovered = await reconciler.reconcile({ recoverAll: !transport.durable });
  if (recovered.redispatched > 0) logger.info(recovered, 'recovered unfinished jobs from the previous run');

  const subscriptions: Subscription[] = [];
  subscriptions.push(
    await startScheduler(
      { store, transport, metrics, logger: logger.child({ component: 'scheduler' }) },
      {
        classifier: toClassifierOptions(config),
        concurrency: config.SCHEDULER_CONCURRENCY,
        priorityHeadroom: config.PRIORITY_HEADROOM,
      },
    ),
  );
  const autoscalings: Autoscaling[] = [];
  for (const [pool, concurrency] of [
    ['actor-jobs', config.ACTOR_CONCURRENCY],
    ['spark-jobs', config.SPARK_CONCURRENCY],
  ] as const) {
    const workerDeps = {
      store,
      transport,
      blobs,
      handlers,
      metrics,
      logger: logger.child({ component: `${pool.split('-')[0]}-worker` }),
    };
    const workerOptions = {
      pool,
      concurrency,
      priorityHeadroom: config.PRIORITY_HEADROOM,
      jobTimeoutInMs: config.JOB_TIMEOUT_MS,
      heartbeatIntervalInMs: config.HEARTBEAT_INTERVAL_MS,
      retryPolicy,
      simulatedDurationFactor: config.SIMULATED_DURATION_FACTOR,
    };
    if (!config.AUTOSCALE) {
      subscriptions.push(await startWorker(workerDeps, workerOptions));
      continue;
    }
    // Each replica is a consumer with `concurrency`, like a pod; KEDA's rule decides how many run.
    const replicas = createWorkerReplicaSet(workerDeps, workerOptions);
    subscriptions.push(replicas);
    autoscalings.push(
      await startAutoscaling({
        pool,
        rule: toScalingRule(pool, config),
        readActive: () => activeMessagesOfLanes(transport, pool),
        replicas,
        intervalInMs: config.AUTOSCALE_POLL_INTERVAL_MS,
        logger: workerDeps.logger,
      }),
    );
  }
  const submitter = await startBatchSubmitter(
    { store, transport, blobs, backend, metrics, logger: logger.child({ component: 'batch-submitter' }) },
    {
      maxJobsPerTask: config.BATCH_MAX_JOBS_PER_TASK,
      lingerInMs: config.BATCH_LINGER_MS,
      pollIntervalInMs: config.BATCH_POLL_INTERVAL_MS,
      retryPolicy,
      taskCapacity: config.BATCH_MAX_CONCURRENT_TASKS,
      drainTimeoutInMs: Math.max(1000, config.SHUTDOWN_TIMEOUT_MS - 5000),
    },
  );
  reconciler.start();

  const app = await buildApp(
    { store, transport, blobs, handlers, metrics, logger },
    await loadApiOptions(config, { mode: 'embedded', logger }),
  );
  const url = await app.listen({ port: config.PORT, host: config.HOST });

  return {
    url,
    shutdownSteps: [
      () => app.close(),
      () => Promise.all(autoscalings.map((a) => a.stop())),
      () => Promise.all(subscriptions.map((s) => s.close())),
      () => submitter.close(),
      () => reconciler.stop(),
      () => backend.close(),
      () => transport.close(),
      () => blobs.close(),
      () => store.close(),
    ],
  };
}
