import { isOrchestratorError } from '@orch/core';
import type { ErrorCode, ValidationIssue } from '@orch/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorBody } from './wire.ts';

/**
 * The one place where failures become HTTP responses. Every error body is `{code, message, details?}`
 * with a stable `code`; a 5xx never carries the underlying error's text (it is logged instead).
 */

/** Codes that appear on the wire: the domain's codes plus a few for HTTP-level client errors. */
export type WireErrorCode =
  | ErrorCode
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_ACCEPTABLE'
  | 'REQUEST_TIMEOUT'
  | 'LENGTH_REQUIRED'
  | 'URI_TOO_LONG'
  | 'TOO_MANY_REQUESTS'
  | 'HEADERS_TOO_LARGE';

/** HTTP status of each domain code; a code not listed here is a 500. */
export const STATUS_OF_CODE: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  ROUTE_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  JOB_NOT_FINISHED: 409,
  JOB_NOT_SUCCEEDED: 409,
  INVALID_TRANSITION: 409,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  DEPENDENCY_UNAVAILABLE: 503,
});

/**
 * `Retry-After` (seconds) of errors a client should simply retry later. Over the live-job quota,
 * room frees up as the tenant's jobs finish and the API re-reads the count every second: 5 s lets a
 * few jobs finish without hammering. A key in use belongs to a request still being answered.
 * (RATE_LIMITED gets its exact `Retry-After` from the rate limiter.)
 */
export const RETRY_AFTER_SECONDS_OF_CODE: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  QUOTA_EXCEEDED: 5,
  IDEMPOTENCY_KEY_IN_USE: 1,
});

/** Codes of Fastify's (and its plugins') own 4xx errors, by status. */
const CODE_OF_CLIENT_STATUS: Readonly<Record<number, WireErrorCode>> = Object.freeze({
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'ROUTE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  411: 'LENGTH_REQUIRED',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  431: 'HEADERS_TOO_LARGE',
});

const INTERNAL: ErrorBody = Object.freeze({ code: 'INTERNAL', message: 'internal error' });
const UNAVAILABLE: ErrorBody = Object.freeze({
  code: 'DEPENDENCY_UNAVAILABLE',
  message: 'a service the API depends on is unavailable; try again later',
});

export interface ErrorResponse {
  statusCode: number;
  body: ErrorBody;
  /** Sent as `Retry-After` when set. */
  retryAfterInSeconds?: number;
}

export interface ErrorMappingOptions {
  bodyLimitBytes: number;
}

/** Maps any thrown value to the response the client sees. Pure: logging is the caller's job. */
export function toErrorResponse(error: unknown, options: ErrorMappingOptions): ErrorResponse {
  if (isOrchestratorError(error)) {
    const statusCode = STATUS_OF_CODE[error.code] ?? 500;
    if (statusCode === 503) return { statusCode, body: UNAVAILABLE };
    if (statusCode >= 500) return { statusCode: 500, body: INTERNAL };
    const body: ErrorBody = { code: error.code, message: error.message };
    if (error.details !== undefined) body.details = error.details;
    const retryAfterInSeconds = RETRY_AFTER_SECONDS_OF_CODE[error.code];
    return retryAfterInSeconds === undefined ? { statusCode, body } : { statusCode, body, retryAfterInSeconds };
  }
  if (!(error instanceof Error)) return { statusCode: 500, body: INTERNAL };

  const { code, statusCode, validation, validationContext } = error as FrameworkError;
  if (Array.isArray(validation)) {
    // A path parameter that fails its pattern cannot name anything that exists.
    if (validationContext === 'params') {
      return { statusCode: 404, body: { code: 'JOB_NOT_FOUND', message: 'job not found' } };
    }
    const issues = toIssues(validation, validationContext);
    return { statusCode: 400, body: { code: 'VALIDATION_FAILED', message: summarize(issues), details: issues } };
  }
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return clientError(400, 'INVALID_JSON', 'request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return clientError(400, 'INVALID_JSON', 'request body is empty but its content-type says JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return clientError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${options.bodyLimitBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return clientError(415, 'UNSUPPORTED_MEDIA_TYPE', 'request body must be JSON (content-type: application/json)');
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return clientError(404, 'ROUTE_NOT_FOUND', 'no resource at this URL');
  }
  if (error instanceof SyntaxError && statusCode === 400) {
    return clientError(400, 'INVALID_JSON', 'request body is not valid JSON');
  }
  // Only Fastify's own errors and errors marked safe to expose (http-errors) keep their 4xx status
  // and message: an SDK error that happens to carry a `statusCode` must not reach the client.
  const exposable = (typeof code === 'string' && code.startsWith('FST_')) || (error as FrameworkError).expose === true;
  if (exposable && typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return clientError(statusCode, CODE_OF_CLIENT_STATUS[statusCode] ?? 'BAD_REQUEST', error.message);
  }
  return { statusCode: 500, body: INTERNAL };
}

/** Sends `error` as a JSON error response, logging server-side failures with their real cause. */
export function sendError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  options: ErrorMappingOptions,
): FastifyReply {
  const { statusCode, body, retryAfterInSeconds } = toErrorResponse(error, options);
  if (retryAfterInSeconds !== undefined) void reply.header('retry-after', String(retryAfterInSeconds));
  if (statusCode >= 500) {
    request.log.error({ err: error, statusCode, code: body.code }, 'request failed');
  } else {
    request.log.info({ statusCode, code: body.code, reason: body.message }, 'request rejected');
  }
  return reply.status(statusCode).type('application/json; charset=utf-8').send(body);
}

/** The 404 for URLs no route matches. */
export function routeNotFound(request: FastifyRequest): ErrorResponse {
  const path = request.url.split('?', 1)[0] ?? '';
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  return { statusCode: 404, body: { code: 'ROUTE_NOT_FOUND', message: `no route for ${request.method} ${shown}` } };
}

const clientError = (statusCode: number, code: WireErrorCode, message: string): ErrorResponse => ({
  statusCode,
  body: { code, message },
});

interface FrameworkError extends Error {
  code?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  validation?: unknown;
  validationContext?: string;
}

interface SchemaIssue {
  instancePath?: unknown;
  message?: unknown;
  keyword?: unknown;
  params?: { keys?: unknown };
}

/** Fastify's validation errors (from the zod validator) as `{path, message}`, like core's issues. */
function toIssues(validation: readonly unknown[], context: string | undefined): ValidationIssue[] {
  const root = context === 'querystring' ? '(query)' : context === 'headers' ? '(headers)' : '(body)';
  return validation.flatMap((raw): ValidationIssue[] => {
    const issue = (raw ?? {}) as SchemaIssue;
    const segments = typeof issue.instancePath === 'string' ? issue.instancePath.split('/').filter(Boolean) : [];
    const message = typeof issue.message === 'string' ? issue.message : 'invalid value';
    const keys = issue.params?.keys;
    // An unknown field is reported at the field itself, so the client sees which one.
    if (issue.keyword === 'unrecognized_keys' && Array.isArray(keys) && keys.length > 0) {
      return keys.map((key) => ({ path: [...segments, String(key)].join('.'), message: 'unknown field' }));
    }
    return [{ path: segments.join('.') || root, message }];
  });
}

function summarize(issues: readonly ValidationIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid request';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return `${first.path}: ${first.message}${more}`;
}

/**
 * The raw HTTP response for a request Node rejects before Fastify sees it: headers over Node's
 * limit (16 KiB), a request that did not arrive within the request timeout, or bytes that are not
 * HTTP. Same JSON shape and codes as every other error.
 */
export function clientErrorResponse(error: Error & { code?: string }): string {
  const [status, reason, body]: [number, string, ErrorBody] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          { code: 'HEADERS_TOO_LARGE', message: 'request headers are too large' },
        ]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' }]
        : [400, 'Bad Request', { code: 'BAD_REQUEST', message: 'malformed HTTP request' }];
  const json = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`
  );
}
