import { OrchestratorError, PHYSICAL_QUEUES } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import type { PrometheusMetrics } from '@orch/platform/metrics';
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth.ts';
import type { ZodApp } from './shared.ts';

/**
 * `GET /metrics` (Prometheus exposition) and the API's HTTP instrumentation: every answered request
 * is counted by method, route pattern (never the raw URL, whose ids would explode the series) and
 * status. Queue depths are read at scrape time from the transport (cached by the Service Bus
 * adapter), so an idle dashboard costs nothing. With API keys, only admin keys may scrape.
 */
export function registerMetricsRoutes(
  app: ZodApp,
  metrics: PrometheusMetrics,
  transport: QueueTransport,
  principalOf: (request: FastifyRequest) => Principal,
): void {
  metrics.observeQueueDepths(() =>
    Promise.all(PHYSICAL_QUEUES.map(async (queue) => ({ queue, depth: await transport.getQueueDepth(queue) }))),
  );

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequestFinished(request.method, route, reply.statusCode, reply.elapsedTime);
    done();
  });

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Jobs submitted by priority, queue depth by queue and kind, HTTP requests and process metrics, ' +
          'in the Prometheus text format. In embedded mode this also holds every in-process service’s job metrics.',
      },
    },
    async (request, reply) => {
      if (!principalOf(request).admin) {
        throw new OrchestratorError('FORBIDDEN', 'metrics are for operators: use an admin API key');
      }
      const { contentType, body } = await metrics.expose();
      return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
    },
  );
}
