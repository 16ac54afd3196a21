import { OrchestratorError } from '@orch/core';
import type { BlobStore, ClassifierOptions, HandlerRegistry, JobMetrics, JobStore, QueueTransport } from '@orch/core';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Principal } from '../auth.ts';
import type { TenantQuota } from '../quota.ts';
import { errorBodySchema, jsonResponse } from '../wire.ts';

/** The Fastify instance routes are registered on: zod schemas validate and serialize. */
export type ZodApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What route handlers work with: the ports plus the resolved options. */
export interface RouteContext {
  store: JobStore;
  transport: QueueTransport;
  blobs: BlobStore;
  handlers: HandlerRegistry;
  knownTypes: ReadonlySet<string>;
  clock: () => Date;
  newId: () => string;
  maxAttempts: number;
  /** Labels submissions with the pool the scheduler will choose; the scheduler's settings. */
  classifier: ClassifierOptions;
  metrics: Pick<JobMetrics, 'jobsSubmitted'>;
  /** Who a request acts for: its key's tenant, and whether it may see every tenant's jobs. */
  principalOf: (request: FastifyRequest) => Principal;
  /** The quota on each tenant's live jobs. */
  quota: TenantQuota;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlInMs: number;
}

const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'VALIDATION_FAILED (details name each bad field) or INVALID_JSON.',
  401: 'UNAUTHENTICATED: no API key, or not a valid one (send `Authorization: Bearer <key>`).',
  403: 'FORBIDDEN: the key is valid but may not do this (admin only).',
  404: 'JOB_NOT_FOUND: no job has this id.',
  409: 'The job is not in a state that allows this.',
  413: 'PAYLOAD_TOO_LARGE: the body is over the size limit.',
  415: 'UNSUPPORTED_MEDIA_TYPE: the body must be application/json.',
  429:
    'RATE_LIMITED (too many requests; see `Retry-After`) or QUOTA_EXCEEDED (too many live jobs; ' +
    '`Retry-After: 5`, by when some may have finished).',
  500: 'INTERNAL: an unexpected failure (details are logged, never returned).',
  503: 'DEPENDENCY_UNAVAILABLE: the job store or the queue cannot be reached; try again later.',
};

/**
 * Documents error responses with the shared error body. `overrides` refines the description of a
 * status for one route (e.g. which 409 codes it returns).
 */
export function errorResponses(
  statuses: readonly number[],
  overrides: Readonly<Record<number, string>> = {},
): Record<number, ReturnType<typeof jsonResponse<typeof errorBodySchema>>> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      jsonResponse(errorBodySchema, overrides[status] ?? ERROR_DESCRIPTIONS[status] ?? 'Error.'),
    ]),
  );
}

/** Errors any route can answer with. */
export const COMMON_ERRORS = [401, 429, 500, 503] as const;
/** Errors of any route that reads a JSON body. */
export const BODY_ERRORS = [400, 413, 415] as const;

/** Throws `FORBIDDEN` unless the request acts with an admin key; `what` says why the route needs one. */
export function requireAdmin(principal: Principal, what: string): void {
  if (!principal.admin) throw new OrchestratorError('FORBIDDEN', `${what}: use an admin API key`);
}
