import type { JobStore, QueueTransport } from '@orch/core';
import type { z } from 'zod';
import { createPrometheusMetrics } from '../metrics/index.ts';
import type { PrometheusMetrics } from '../metrics/index.ts';
import { createLogger, onShutdown, startOpsServer } from '../runtime/index.ts';
import type { Logger, OpsServer } from '../runtime/index.ts';
import type { logConfig, opsConfig } from '../runtime/config.ts';
import { assertStandaloneCapable, createJobStore, createTransport } from './index.ts';
import type { StorageSettings } from './index.ts';

export type ConsumerServiceSettings = StorageSettings & z.output<typeof logConfig> & z.output<typeof opsConfig>;

/** What a standalone consumer service (scheduler, a worker pool, the batch submitter) runs on. */
export interface ConsumerService {
  logger: Logger;
  store: JobStore;
  transport: QueueTransport;
  metrics: PrometheusMetrics;
  ops: OpsServer;
  /**
   * On SIGTERM (see `onShutdown`): readiness off, then `drain` in order (stop consuming, let work in
   * flight finish), then the transport, then `close` in order (other adapters), the store and the
   * ops server.
   */
  stopOnShutdown: (steps: { drain: (() => Promise<unknown>)[]; close?: (() => Promise<unknown>)[] }) => void;
}

/**
 * The common start of a consumer service's `main.ts`: refuses in-process adapters (they exist only
 * inside the all-in-one process), then opens the job store, the ops server (probes and `/metrics`,
 * ready while the store answers) and the transport, in that order.
 */
export async function startConsumerService(
  settings: ConsumerServiceSettings,
  service: string,
): Promise<ConsumerService> {
  const logger = createLogger({ service, level: settings.LOG_LEVEL, format: settings.LOG_FORMAT });
  assertStandaloneCapable(settings, service);
  const store = await createJobStore(settings, logger);
  const metrics = createPrometheusMetrics({ service });
  const ops = await startOpsServer({
    port: settings.OPS_PORT,
    host: settings.OPS_HOST,
    logger,
    readinessChecks: { store: () => store.ping() },
    metrics,
  });
  const transport = await createTransport(settings, logger);
  return {
    logger,
    store,
    transport,
    metrics,
    ops,
    stopOnShutdown: ({ drain, close = [] }) => {
      onShutdown(
        logger,
        [
          () => Promise.resolve(ops.setReady(false)),
          ...drain,
          () => transport.close(),
          ...close,
          () => store.close(),
          () => ops.close(),
        ],
        { timeoutInMs: settings.SHUTDOWN_TIMEOUT_MS },
      );
    },
  };
}
