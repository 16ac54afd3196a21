import { z } from 'zod';
import { autoscaleConfig, logConfig, opsConfig, parseConfig, storageConfig } from '@orch/platform/runtime';

export const LOCAL_SERVICES = ['api', 'scheduler', 'actor-worker', 'spark-worker', 'batch-submitter'] as const;
export type LocalService = (typeof LOCAL_SERVICES)[number];

/** The launcher's own keys; every other variable is passed through to the services it starts. */
export const localConfigSchema = logConfig.extend(autoscaleConfig.shape).extend({
  DATA_DIR: storageConfig.shape.DATA_DIR,
  DATABASE_URL: storageConfig.shape.DATABASE_URL,
  AZURE_STORAGE_CONNECTION_STRING: storageConfig.shape.AZURE_STORAGE_CONNECTION_STRING,
  /** Which services to start, comma-separated. @default all five */
  LOCAL_SERVICES: z
    .string()
    .default(LOCAL_SERVICES.join(','))
    .transform((list) => list.split(',').map((s) => s.trim()))
    .pipe(z.array(z.enum(LOCAL_SERVICES)).min(1)),
  /**
   * The first ops port (/healthz, /readyz, /metrics): scheduler OPS_PORT, batch-submitter +1, actor
   * worker replicas +10…+19, spark worker replicas +20…+29; 0 picks free ports.
   */
  OPS_PORT: opsConfig.shape.OPS_PORT,
  /** Azurite's blob port when the launcher starts it (when AZURE_STORAGE_CONNECTION_STRING is unset). */
  AZURITE_BLOB_PORT: z.coerce.number().int().min(0).max(65535).default(10000),
});

const OPS_PORT_OFFSETS: Record<Exclude<LocalService, 'api'>, number> = {
  scheduler: 0,
  'batch-submitter': 1,
  'actor-worker': 10,
  'spark-worker': 20,
};

/** The ops port of a service (replica) in local mode; the API serves its probes on its own port. */
export function localOpsPort(
  config: Pick<LocalConfig, 'OPS_PORT'>,
  service: LocalService,
  replica = 0,
): number | undefined {
  if (service === 'api') return undefined;
  return config.OPS_PORT === 0 ? 0 : config.OPS_PORT + OPS_PORT_OFFSETS[service] + replica;
}

export type LocalConfig = Readonly<z.output<typeof localConfigSchema>>;

export const loadLocalConfig = (env: Record<string, string | undefined>): LocalConfig =>
  parseConfig(localConfigSchema, env);
