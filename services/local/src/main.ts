import { createLogger, onShutdown } from '@orch/platform/runtime';
import { loadLocalConfig } from './config.ts';
import { startLocal } from './local.ts';

const config = loadLocalConfig(process.env);
const logger = createLogger({ service: 'local', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const system = await startLocal(config, process.env, logger);
onShutdown(logger, system.shutdownSteps, { timeoutInMs: config.SHUTDOWN_TIMEOUT_MS + 15_000 });
