import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { activeMessagesOfLanes, OrchestratorError } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import { ensurePgDatabase } from '@orch/platform/postgres';
import { parseConfig, startAutoscaling, storageConfig, toScalingRule } from '@orch/platform/runtime';
import type { Autoscaling, Logger, ReplicaSet } from '@orch/platform/runtime';
import { startAzurite } from '@orch/platform/test-servers';
import { createTransport, embeddedPaths } from '@orch/platform/wiring';
import { localOpsPort } from './config.ts';
import type { LocalConfig, LocalService } from './config.ts';
import { supervise } from './supervisor.ts';
import type { SupervisedProcess } from './supervisor.ts';

const SERVICES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Each service's entrypoint and the variables that make it that service. */
const ENTRYPOINTS: Record<LocalService, { main: string; env?: Record<string, string> }> = {
  api: { main: 'api/src/main.ts' },
  scheduler: { main: 'scheduler/src/main.ts' },
  'actor-worker': { main: 'workers/src/main.ts', env: { WORKER_POOL: 'actor' } },
  'spark-worker': { main: 'workers/src/main.ts', env: { WORKER_POOL: 'spark' } },
  'batch-submitter': { main: 'batch-submitter/src/main.ts' },
};

export interface LocalSystem {
  shutdownSteps: (() => Promise<unknown>)[];
}

/**
 * Local mode: checks that RabbitMQ and PostgreSQL answer, creates the database on first use, starts
 * Azurite (unless AZURE_STORAGE_CONNECTION_STRING points elsewhere), then runs every service as its
 * own process with ORCH_MODE=local, restarting any that crashes. With AUTOSCALE, the actor and
 * spark workers run as 1–10 processes each, as many as KEDA's rule asks for their queues' depth.
 */
export async function startLocal(config: LocalConfig, env: NodeJS.ProcessEnv, logger: Logger): Promise<LocalSystem> {
  const rabbitUrl = new URL(env.RABBITMQ_URL ?? 'amqp://127.0.0.1:5672');
  const databaseUrl = new URL(config.DATABASE_URL);
  await assertReachable('RabbitMQ', rabbitUrl.hostname, Number(rabbitUrl.port || 5672));
  await assertReachable('PostgreSQL', databaseUrl.hostname, Number(databaseUrl.port || 5432));
  const { created } = await ensurePgDatabase(config.DATABASE_URL);
  if (created) logger.info({ database: databaseUrl.pathname.slice(1) }, 'created the database');

  let azurite: Awaited<ReturnType<typeof startAzurite>> | undefined;
  let storage = config.AZURE_STORAGE_CONNECTION_STRING;
  if (!storage) {
    const location = embeddedPaths(config.DATA_DIR).azurite;
    azurite = await startAzurite({ location, blobPort: config.AZURITE_BLOB_PORT });
    storage = azurite.connectionString;
    logger.info({ blobEndpoint: azurite.blobEndpoint, location }, 'Azurite started');
  }

  const childFormat = config.LOG_FORMAT === 'auto' && process.stdout.isTTY ? 'pretty' : config.LOG_FORMAT;
  const launch = (name: LocalService, replica?: number): SupervisedProcess => {
    const opsPort = localOpsPort(config, name, replica);
    return supervise({
      name: replica === undefined ? name : `${name}-${replica + 1}`,
      command: process.execPath,
      args: [path.join(SERVICES_DIR, ENTRYPOINTS[name].main)],
      env: {
        ...env,
        ORCH_MODE: 'local',
        AZURE_STORAGE_CONNECTION_STRING: storage,
        LOG_FORMAT: childFormat,
        ...ENTRYPOINTS[name].env,
        ...(opsPort !== undefined && { OPS_PORT: String(opsPort) }),
      },
      logger,
    });
  };

  const graceInMs = config.SHUTDOWN_TIMEOUT_MS + 5_000;
  const scaled = config.AUTOSCALE ? config.LOCAL_SERVICES.filter((name) => name in SCALED_POOLS) : [];
  const processes = config.LOCAL_SERVICES.filter((name) => !scaled.includes(name)).map((name) => launch(name));
  const replicaSets = new Map<LocalService, ReplicaSet>();
  const autoscalings: Autoscaling[] = [];
  let transport: QueueTransport | undefined;
  if (scaled.length > 0) {
    // The launcher plays KEDA: it reads the lanes' depth and runs that many worker processes.
    const queues = await createTransport(parseConfig(storageConfig, { ...env, ORCH_MODE: 'local' }), logger);
    transport = queues;
    for (const name of scaled) {
      const pool = SCALED_POOLS[name as keyof typeof SCALED_POOLS];
      const replicas = createReplicaSet((replica) => launch(name, replica), graceInMs);
      replicaSets.set(name, replicas);
      autoscalings.push(
        await startAutoscaling({
          pool,
          rule: toScalingRule(pool, config),
          readActive: () => activeMessagesOfLanes(queues, pool),
          replicas,
          intervalInMs: config.AUTOSCALE_POLL_INTERVAL_MS,
          logger: logger.child({ component: 'autoscaler' }),
        }),
      );
    }
  }
  logger.info(
    {
      services: config.LOCAL_SERVICES,
      autoscaled: scaled,
      api: `http://${env.HOST ?? '127.0.0.1'}:${env.PORT ?? 8000}`,
    },
    'local mode: every service runs as its own process',
  );

  return {
    shutdownSteps: [
      // Stop intake first, then the consumers, as a rolling shutdown would.
      () => Promise.all(processes.filter((p) => p.name === 'api').map((p) => p.stop(graceInMs))),
      () => Promise.all(autoscalings.map((a) => a.stop())),
      () =>
        Promise.all([
          ...processes.map((p) => p.stop(graceInMs)),
          ...[...replicaSets.values()].map((r) => r.scaleTo(0)),
        ]),
      async () => transport?.close(),
      async () => azurite?.close(),
    ],
  };
}

const SCALED_POOLS = { 'actor-worker': 'actor-jobs', 'spark-worker': 'spark-jobs' } as const;

/** Worker processes as replicas: scaling down stops the newest ones (SIGTERM, so they drain). */
function createReplicaSet(launch: (replica: number) => SupervisedProcess, graceInMs: number): ReplicaSet {
  const running: SupervisedProcess[] = [];
  let changing = Promise.resolve();
  return {
    count: () => running.length,
    scaleTo(count) {
      changing = changing.then(async () => {
        while (running.length < count) running.push(launch(running.length));
        await Promise.all(running.splice(count).map((p) => p.stop(graceInMs)));
      });
      return changing;
    },
  };
}

async function assertReachable(what: string, host: string, port: number): Promise<void> {
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (!reachable) {
    throw new OrchestratorError(
      'DEPENDENCY_UNAVAILABLE',
      `${what} is not reachable at ${host}:${port}. Start it (bash scripts/ensure-services.sh installs and starts ` +
        'PostgreSQL and RabbitMQ) or point the configuration at yours.',
    );
  }
}
