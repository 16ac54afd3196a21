import { createHandlerRegistry } from '@orch/core';
import { createLogger, onShutdown } from '@orch/platform/runtime';
import { assertStandaloneCapable, createBlobStore, createJobStore, createTransport } from '@orch/platform/wiring';
import { createPrometheusMetrics } from '@orch/platform/metrics';
import { buildApp } from './app.ts';
import { loadApiOptions, loadApiServiceConfig } from './config.ts';

const config = loadApiServiceConfig(process.env);
const logger = createLogger({ service: 'api', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
assertStandaloneCapable(config, 'api');
const store = await createJobStore(config, logger);
const transport = await createTransport(config, logger);
const blobs = await createBlobStore(config);
const app = await buildApp(
  {
    store,
    transport,
    blobs,
    handlers: createHandlerRegistry(),
    metrics: createPrometheusMetrics({ service: 'api' }),
    logger,
  },
  await loadApiOptions(config, { mode: config.ORCH_MODE, logger }),
);
const url = await app.listen({ port: config.PORT, host: config.HOST });
logger.info({ url, transport: transport.kind }, 'api started');
onShutdown(logger, [() => app.close(), () => transport.close(), () => blobs.close(), () => store.close()], {
  timeoutInMs: config.SHUTDOWN_TIMEOUT_MS,
});
