import { PHYSICAL_QUEUES } from '@orch/core';
import type { QueueTransport } from '@orch/core';
import type { PrometheusMetrics } from '@orch/platform/metrics';
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth.ts';
import { requireAdmin } from './shared.ts';
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
          'Jobs submitted by the pool the classifier will route them to and priority, queue depth by queue and ' +
          'kind, HTTP requests and process metrics, in the Prometheus text format. In embedded mode this also ' +
          'holds every in-process service’s job metrics (routed, completed, failed, retried, durations). ' +
          'Admin keys only (403 FORBIDDEN for a tenant key).',
      },
    },
    async (request, reply) => {
      requireAdmin(principalOf(request), 'metrics are for operators');
      const { contentType, body } = await metrics.expose();
      return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
    },
  );
}
