import { createLogger, onShutdown } from '@orch/platform/runtime';
import { loadEmbeddedConfig } from './config.ts';
import { startEmbedded } from './embedded.ts';

const config = loadEmbeddedConfig(process.env);
const logger = createLogger({ service: 'embedded', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const system = await startEmbedded(config, logger);
logger.info(
  { url: system.url, dataDir: config.DATA_DIR, docs: `${system.url}/docs` },
  `embedded orchestrator ready: try  curl -X POST ${system.url}/submit-job -H 'content-type: application/json' -d '{"rows":1000}'`,
);
onShutdown(logger, system.shutdownSteps, { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS });
