import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { BlobStore, HandlerRegistry, JobStore, QueueTransport } from '@orch/core';
import type { Logger } from '@orch/platform/runtime';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { routeNotFound, sendError } from './http-errors.ts';
import type { ErrorMappingOptions } from './http-errors.ts';
import { registerJobRoutes } from './routes/jobs.ts';
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
  /** @default () => new Date() */
  clock?: () => Date;
  /** Ids of new jobs. @default crypto.randomUUID */
  newId?: () => string;
}

export interface ApiOptions {
  /** Attempts each new job gets, the first included. */
  maxAttempts: number;
  /** Largest request body accepted; larger is a 413. @default 1048576 (1 MiB) */
  bodyLimitBytes?: number;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

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
  app.get('/openapi.json', { schema: { hide: true } }, (_request, reply) => reply.send(app.swagger()));

  const ctx: RouteContext = {
    store: deps.store,
    transport: deps.transport,
    blobs: deps.blobs,
    handlers: deps.handlers,
    knownTypes: new Set(deps.handlers.keys()),
    clock: deps.clock ?? (() => new Date()),
    newId: deps.newId ?? randomUUID,
    maxAttempts: options.maxAttempts,
  };
  registerJobRoutes(app, ctx);
  registerOpsRoutes(app, ctx);
  return app;
}
