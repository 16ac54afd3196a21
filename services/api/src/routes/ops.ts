import { INGEST_LANES, INGEST_QUEUE, POOL_QUEUES, lanesOf, sumQueueDepths } from '@orch/core';
import type { FastifyBaseLogger } from 'fastify';
import {
  jobStatsSchema,
  jsonResponse,
  queuesStatusSchema,
  readinessSchema,
  statusSchema,
  toDepthView,
} from '../wire.ts';
import { COMMON_ERRORS, errorResponses } from './shared.ts';
import type { RouteContext, ZodApp } from './shared.ts';

/** A readiness probe must answer even when a dependency hangs. */
const READINESS_CHECK_TIMEOUT_IN_MS = 3000;

type CheckState = 'ok' | 'failed';

async function check(name: string, probe: () => Promise<unknown>, log: FastifyBaseLogger): Promise<CheckState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} check timed out after ${READINESS_CHECK_TIMEOUT_IN_MS} ms`)),
      READINESS_CHECK_TIMEOUT_IN_MS,
    );
  });
  try {
    await Promise.race([probe(), timeout]);
    return 'ok';
  } catch (e) {
    log.warn({ err: e, check: name }, 'readiness check failed');
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}

export function registerOpsRoutes(app: ZodApp, ctx: RouteContext): void {
  const { store, transport } = ctx;

  app.get(
    '/queues/status',
    {
      schema: {
        tags: ['operations'],
        summary: 'Queue depths',
        description:
          'Active, scheduled and dead-lettered messages of the ingest queue and of each pool, each summed over its lanes. ' +
          'The queues are shared infrastructure: every key sees the same system-wide depths (messages of all tenants), ' +
          'never any job.',
        response: { 200: jsonResponse(queuesStatusSchema, 'Depth of every queue.'), ...errorResponses(COMMON_ERRORS) },
      },
    },
    async () => {
      const summed = async (name: string, laneList: readonly { dispatchClass: string; queue: string }[]) => {
        const lanes = await Promise.all(
          laneList.map(async (lane) => [lane.dispatchClass, await transport.getQueueDepth(lane.queue)] as const),
        );
        const total = toDepthView(sumQueueDepths(lanes.map(([, depth]) => depth)));
        const byLane = Object.fromEntries(lanes.map(([dispatchClass, depth]) => [dispatchClass, toDepthView(depth)]));
        return [name, { ...total, lanes: byLane }] as const;
      };
      const queues = await Promise.all([
        summed(INGEST_QUEUE, INGEST_LANES),
        ...POOL_QUEUES.map((pool) => summed(pool, lanesOf(pool))),
      ]);
      return { queues: Object.fromEntries(queues) };
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        tags: ['operations'],
        summary: 'Job counts by status',
        description:
          'How many jobs are in each status right now (one grouped count in the job store): every ' +
          "tenant's for an admin key, only its own for a tenant key.",
        response: {
          200: jsonResponse(jobStatsSchema, 'Counts of every status.'),
          ...errorResponses(COMMON_ERRORS),
        },
      },
    },
    async (request) => {
      const principal = ctx.principalOf(request);
      return { jobs: await store.countByState(principal.admin ? {} : { tenant: principal.tenant }) };
    },
  );

  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Health (the original contract)',
        response: { 200: jsonResponse(statusSchema, 'Always `{"status":"healthy"}` while the process serves.') },
      },
    },
    () => ({ status: 'healthy' }),
  );

  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Liveness probe',
        response: { 200: jsonResponse(statusSchema, '`{"status":"ok"}`: the process serves requests.') },
      },
    },
    () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Readiness probe',
        description: 'Ready when the job store answers a ping and the transport reports the ingest queue depth.',
        response: {
          200: jsonResponse(readinessSchema, 'Ready.'),
          503: jsonResponse(readinessSchema, 'Not ready; the failing checks are marked `failed`.'),
        },
      },
    },
    async (request, reply) => {
      const [storeState, transportState] = await Promise.all([
        check('store', () => store.ping(), request.log),
        check('transport', () => transport.getQueueDepth(INGEST_QUEUE), request.log),
      ]);
      const ready = storeState === 'ok' && transportState === 'ok';
      return reply
        .status(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', checks: { store: storeState, transport: transportState } });
    },
  );
}
