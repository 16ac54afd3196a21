import { randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { DEFAULT_CLASSIFIER_OPTIONS, NO_JOB_METRICS, OrchestratorError } from '@orch/core';
import type { BlobStore, ClassifierOptions, HandlerRegistry, JobStore, QueueTransport } from '@orch/core';
import type { PrometheusMetrics } from '@orch/platform/metrics';
import type { Logger } from '@orch/platform/runtime';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ANONYMOUS_ADMIN, bearerKeyOf, createAuthenticator } from './auth.ts';
import type { ApiKeyEntry, Principal } from './auth.ts';
import { createAuthFailureLimiter } from './auth-failures.ts';
import { clientErrorResponse, routeNotFound, sendError } from './http-errors.ts';
import { createTenantQuota } from './quota.ts';
import type { ErrorMappingOptions } from './http-errors.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { createStatsSampler } from './dashboard/sampler.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerMetricsRoutes } from './routes/metrics.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import type { RouteContext, ZodApp } from './routes/shared.ts';

/** The ports the API works through; `main.ts` (or a test) chooses the adapters. */
export interface ApiDeps {
  store: JobStore;
  transport: QueueTransport;
  blobs: BlobStore;
  /** The job types the API accepts are this registry's names. */
  handlers: HandlerRegistry;
  logger: Logger;
  /** Serves `GET /metrics` and counts submissions and requests; without it there is no `/metrics`. */
  metrics?: PrometheusMetrics;
  /** @default () => new Date() */
  clock?: () => Date;
  /** Ids of new jobs. @default crypto.randomUUID */
  newId?: () => string;
}

export interface ApiOptions {
  /** Attempts each new job gets, the first included. */
  maxAttempts: number;
  /**
   * The scheduler's classifier settings (same CLASSIFIER_* variables): the API labels
   * `orch_jobs_submitted_total` with the pool each job will be routed to. @default the product's
   */
  classifier?: ClassifierOptions;
  /** Largest request body accepted; larger is a 413. @default 1048576 (1 MiB) */
  bodyLimitBytes?: number;
  /** How long an Idempotency-Key is remembered. @default 86400000 (24 h) */
  idempotencyTtlInMs?: number;
  /**
   * The API keys (as hashes) and their tenants. Empty or absent: no authentication, every request
   * acts as admin (`loadApiOptions` allows that only on loopback).
   */
  apiKeys?: readonly ApiKeyEntry[];
  /** Requests per tenant per window (only with `apiKeys`); `max: 0` turns it off. @default off */
  rateLimit?: { max: number; windowInMs: number };
  /**
   * Failed authentications one client address may make per window (only with `apiKeys`); past
   * that, its requests without a valid key get 429 RATE_LIMITED until the window ends, while valid
   * keys from it still work. `maxClients` bounds the addresses remembered (@default 10000).
   * `max: 0` turns it off. @default off
   */
  authFailureLimit?: { max: number; windowInMs: number; maxClients?: number };
  /** Live jobs a tenant may have; 0 turns the quota off. @default 0 */
  maxLiveJobsPerTenant?: number;
  /** A request must arrive whole within this time. @default 30000 */
  requestTimeoutInMs?: number;
  /** Origins allowed to call from a browser; empty: no CORS headers at all. @default [] */
  corsOrigins?: readonly string[];
  /** The dashboard's history: one sample per interval, kept this long. @default 1 s, 15 minutes */
  dashboard?: { sampleIntervalInMs?: number; historyInMs?: number };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without an API key (probes, the dashboard's files, the API description). */
    public?: boolean;
  }
}

/**
 * Content Security Policy: scripts and styles from this origin only (the dashboard and the docs UI
 * serve theirs as files), no framing, no plugins.
 */
const CONTENT_SECURITY_POLICY = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
};

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_IDEMPOTENCY_TTL_IN_MS = 24 * 3600 * 1000;

const API_VERSION = '0.1.0';

/** Routes whose body may be omitted altogether (it then means "all defaults"). */
const OPTIONAL_BODY_ROUTES = ['/submit-job', '/jobs'];

interface LooseOpenApi {
  paths?: Record<string, { post?: { requestBody?: { required?: boolean } } } | undefined>;
  components?: { schemas?: Record<string, unknown> };
}

function finishOpenApi(openapi: LooseOpenApi): void {
  // @fastify/swagger marks every body required; these routes also accept none.
  for (const path of OPTIONAL_BODY_ROUTES) {
    const requestBody = openapi.paths?.[path]?.post?.requestBody;
    if (requestBody) requestBody.required = false;
  }
  // Components come from zod's process-wide registry: keep only those this document references.
  const schemas = openapi.components?.schemas;
  if (!schemas) return;
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    for (const [, name] of JSON.stringify(value ?? null).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
      if (name !== undefined && !used.has(name)) {
        used.add(name);
        visit(schemas[name]);
      }
    }
  };
  visit(openapi.paths);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}

/** The 429 for a client address over its failed authentications, with the wait until its window ends. */
function tooManyFailures(reply: FastifyReply, blockedForMs: number): OrchestratorError {
  const seconds = Math.max(1, Math.ceil(blockedForMs / 1000));
  void reply.header('retry-after', String(seconds));
  return new OrchestratorError(
    'RATE_LIMITED',
    `too many failed authentications from this address; retry in ${seconds} s, or send a valid API key`,
  );
}

/**
 * Builds the HTTP API (routes, validation, error mapping, OpenAPI document and docs UI) without
 * listening: `main.ts` calls `listen`, tests call `inject`. Closing the app does not close the ports.
 */
export async function buildApp(deps: ApiDeps, options: ApiOptions): Promise<FastifyInstance> {
  if (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${options.maxAttempts}`);
  }
  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const errorOptions: ErrorMappingOptions = { bodyLimitBytes };

  // Typed as Fastify's logger interface so the instance is a plain `FastifyInstance`.
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app: ZodApp = Fastify({
    loggerInstance,
    bodyLimit: bodyLimitBytes,
    requestTimeout: options.requestTimeoutInMs ?? 30_000,
    // Oversized headers (over Node's 16 KiB), malformed requests and timeouts: our error shape.
    clientErrorHandler: (error, socket) => {
      if (socket.writable) socket.end(clientErrorResponse(error));
    },
    // Long or odd ids must reach the id check (a 404), not trip the router's own limit.
    routerOptions: { maxParamLength: 1000 },
    // Malformed URLs are answered by the router before any hook: give them our error shape too.
    frameworkErrors: (error, request, reply) => {
      sendError(error, request, reply, errorOptions);
    },
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: without this, a text/plain body would be parsed as a string and reach validation.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, errorOptions));

  await app.register(fastifyHelmet, {
    contentSecurityPolicy: CONTENT_SECURITY_POLICY,
    // The API is called cross-origin only where CORS_ORIGINS allows it.
    crossOriginResourcePolicy: { policy: options.corsOrigins?.length ? 'cross-origin' : 'same-origin' },
  });
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: [...options.corsOrigins],
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
      exposedHeaders: ['location', 'retry-after', 'idempotent-replayed'],
      maxAge: 600,
    });
  }
  // Who is asking: every route but the public ones needs a valid key once keys are configured.
  // Registered after helmet and CORS, whose hooks must run first so a 401 carries their headers,
  // and before the rate limiter, which counts per tenant.
  const principals = new WeakMap<FastifyRequest, Principal>();
  const apiKeys = options.apiKeys ?? [];
  const authenticate = apiKeys.length > 0 ? createAuthenticator(apiKeys) : () => ANONYMOUS_ADMIN;
  const principalOf = (request: FastifyRequest): Principal => principals.get(request) ?? ANONYMOUS_ADMIN;
  const clock = deps.clock ?? (() => new Date());
  // Against key guessing, refusals count per client address: `request.ip` is the socket's peer
  // (`trustProxy` is off); api-service's `externalTrafficPolicy: Local` keeps it the client's.
  const failureLimit = options.authFailureLimit;
  const failures =
    apiKeys.length > 0 && failureLimit && failureLimit.max > 0
      ? createAuthFailureLimiter({
          maxFailures: failureLimit.max,
          windowInMs: failureLimit.windowInMs,
          ...(failureLimit.maxClients !== undefined && { maxClients: failureLimit.maxClients }),
          now: () => clock().getTime(),
        })
      : undefined;
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.public === true || request.routeOptions.url?.startsWith('/docs')) return done();
    const authorization = request.headers.authorization;
    const blockedForMs = failures?.blockedFor(request.ip);
    // A refused address gets no key lookup for what cannot be a key; a key is still checked, so
    // clients sharing the address with the guesser (an office behind NAT) keep working with theirs.
    if (blockedForMs !== undefined && bearerKeyOf(authorization) === undefined) {
      return done(tooManyFailures(reply, blockedForMs));
    }
    try {
      principals.set(request, authenticate(authorization));
      done();
    } catch (e) {
      if (blockedForMs !== undefined) return done(tooManyFailures(reply, blockedForMs));
      if (failures?.recordFailure(request.ip)) {
        request.log.warn(
          { client: request.ip, failures: failureLimit?.max },
          'client address refused after too many failed authentications',
        );
      }
      done(e as Error);
    }
  });

  // Per tenant, so only with keys: without them the API is open on loopback only, where every
  // client (tests, the dashboard, a load generator) shares one address.
  const rateLimit = options.rateLimit;
  if (rateLimit && rateLimit.max > 0 && apiKeys.length > 0) {
    await app.register(fastifyRateLimit, {
      global: true,
      max: rateLimit.max,
      timeWindow: rateLimit.windowInMs,
      keyGenerator: (request) => `tenant:${principalOf(request).tenant}`,
      // Probes and the dashboard's files are not limited (they are public and cheap).
      allowList: (request) => request.routeOptions.config.public === true,
      errorResponseBuilder: (_request, context) =>
        new OrchestratorError(
          'RATE_LIMITED',
          `rate limit of ${context.max} requests per ${Math.round(rateLimit.windowInMs / 1000)} s exceeded; retry in ${context.after}`,
        ),
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const { statusCode, body } = routeNotFound(request);
    return reply.status(statusCode).send(body);
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Cloud Job Orchestrator API',
        version: API_VERSION,
        description:
          'Submit compute jobs; each is classified by estimated cost and routed to the cheapest pool that fits. ' +
          'Errors are JSON `{code, message, details?}` with a stable `code`.',
      },
      tags: [
        { name: 'jobs', description: 'Submit, inspect and cancel jobs.' },
        { name: 'operations', description: 'Queue depths, health and readiness.' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (document) => {
      const openapi = jsonSchemaTransformObject(document);
      finishOpenApi(openapi as LooseOpenApi);
      return openapi;
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, (_request, reply) =>
    reply.send(app.swagger()),
  );

  const ctx: RouteContext = {
    store: deps.store,
    transport: deps.transport,
    blobs: deps.blobs,
    handlers: deps.handlers,
    knownTypes: new Set(deps.handlers.keys()),
    clock,
    newId: deps.newId ?? randomUUID,
    maxAttempts: options.maxAttempts,
    classifier: options.classifier ?? DEFAULT_CLASSIFIER_OPTIONS,
    metrics: deps.metrics ?? NO_JOB_METRICS,
    principalOf,
    quota: createTenantQuota({ store: deps.store, maxLiveJobs: options.maxLiveJobsPerTenant ?? 0 }),
    idempotencyTtlInMs: options.idempotencyTtlInMs ?? DEFAULT_IDEMPOTENCY_TTL_IN_MS,
  };
  if (deps.metrics) registerMetricsRoutes(app, deps.metrics, deps.transport, principalOf);
  registerJobRoutes(app, ctx);
  registerOpsRoutes(app, ctx);
  registerDashboardRoutes(
    app,
    createStatsSampler({
      store: deps.store,
      transport: deps.transport,
      logger: deps.logger,
      ...(options.dashboard?.sampleIntervalInMs !== undefined && {
        intervalInMs: options.dashboard.sampleIntervalInMs,
      }),
      ...(options.dashboard?.historyInMs !== undefined && { historyInMs: options.dashboard.historyInMs }),
    }),
    principalOf,
  );
  return app;
}
