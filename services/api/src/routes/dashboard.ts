import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Principal } from '../auth.ts';
import type { StatsSampler, TenantSample } from '../dashboard/sampler.ts';
import { jsonResponse } from '../wire.ts';
import { COMMON_ERRORS, errorResponses } from './shared.ts';
import type { ZodApp } from './shared.ts';

const require = createRequire(import.meta.url);
const PUBLIC_DIR = new URL('../dashboard/public/', import.meta.url);

/** The page's files, read once: the page, its script and styles, and uPlot (no CDN: nothing external). */
const ASSETS: Record<string, { file: string | URL; type: string }> = {
  '/': { file: new URL('index.html', PUBLIC_DIR), type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: new URL('app.js', PUBLIC_DIR), type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { file: new URL('app.css', PUBLIC_DIR), type: 'text/css; charset=utf-8' },
  '/dashboard/uplot.js': {
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  '/dashboard/uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const TENANT_SCOPE =
  "Covers every tenant's jobs for an admin key, only its own for a tenant key. For a tenant key it is " +
  'null in samples the API computed no figures for: it computes them on request, for the newest sample, ' +
  'so those taken before the tenant first asked are null.';

const depthSchema = z.object({ active: z.number(), scheduled: z.number(), dead_letter: z.number() });
const sampleSchema = z.object({
  at: z.number().describe('Epoch milliseconds.'),
  queues: z.record(z.string(), depthSchema).describe('Each logical queue, its lanes summed.'),
  workers: z
    .record(z.string(), z.object({ replicas: z.number(), concurrency: z.number(), in_flight: z.number() }))
    .describe('Per pool: worker replicas (processes or in-process consumers), their slots, jobs running.'),
  succeeded_per_sec: z.number().nullable().describe(TENANT_SCOPE),
  failed_per_sec: z.number().nullable().describe(TENANT_SCOPE),
  dispatch_latency_ms: z
    .object({ p50: z.number(), p95: z.number() })
    .nullable()
    .describe(`Of the jobs started in the last 5 s; null when none started. ${TENANT_SCOPE}`),
});
const historySchema = z.object({ interval_ms: z.number(), samples: z.array(sampleSchema) });

/**
 * The dashboard (`GET /`, public files) and the bounded history it draws (`GET /stats/history`,
 * authenticated like every data route). The sampler runs while the app is open.
 */
export function registerDashboardRoutes(
  app: ZodApp,
  sampler: StatsSampler,
  principalOf: (request: FastifyRequest) => Principal,
): void {
  for (const [url, { file, type }] of Object.entries(ASSETS)) {
    const body = readFileSync(file);
    app.get(url, { config: { public: true }, schema: { hide: true } }, (_request, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(body),
    );
  }

  app.get(
    '/stats/history',
    {
      schema: {
        tags: ['operations'],
        summary: 'Dashboard history',
        description:
          'Samples kept by the API (one per interval, the last 15 minutes): queue depths, workers per pool, ' +
          'jobs finished per second, dispatch latency. `since` (epoch ms) returns only newer samples. ' +
          'Queue depths and workers are shared infrastructure, the same for every key. The job rates and ' +
          'latency count every tenant’s jobs for an admin key, and only its own jobs for a tenant key: those ' +
          'are computed when the tenant asks, for the newest sample, and kept, so older samples have them ' +
          'only where the tenant asked before (null otherwise).',
        querystring: z.object({ since: z.coerce.number().int().min(0).optional() }),
        response: {
          200: jsonResponse(historySchema, 'Samples, oldest first.'),
          ...errorResponses([400, ...COMMON_ERRORS]),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { since } = request.query;
      const samples: TenantSample[] = principal.admin
        ? sampler.history(since)
        : await sampler.tenantHistory(principal.tenant, since);
      return {
        interval_ms: sampler.intervalInMs,
        samples: samples.map((s) => ({
          at: s.at,
          queues: Object.fromEntries(
            Object.entries(s.queues).map(([q, d]) => [
              q,
              { active: d.active, scheduled: d.scheduled, dead_letter: d.deadLetter },
            ]),
          ),
          workers: Object.fromEntries(
            Object.entries(s.workers).map(([p, w]) => [
              p,
              { replicas: w.replicas, concurrency: w.concurrency, in_flight: w.inFlight },
            ]),
          ),
          succeeded_per_sec: s.succeededPerSec,
          failed_per_sec: s.failedPerSec,
          dispatch_latency_ms: s.dispatchLatencyInMs,
        })),
      };
    },
  );
  app.addHook('onReady', async () => {
    sampler.start();
    await sampler.sample().catch(() => undefined);
  });
  app.addHook('onClose', (_app, done) => {
    sampler.stop();
    done();
  });
}
