/**
 * Stable error codes. A code exists only when a caller can act differently on it; the API maps each
 * code to one HTTP status in a single place.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'VALIDATION_FAILED'
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'ROUTE_NOT_FOUND'
  | 'JOB_NOT_FOUND'
  | 'JOB_NOT_FINISHED'
  | 'JOB_NOT_SUCCEEDED'
  | 'INVALID_TRANSITION'
  | 'CONFLICT'
  | 'IDEMPOTENCY_KEY_IN_USE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'LOCK_LOST'
  | 'JOB_TIMEOUT'
  | 'HANDLER_FAILED'
  | 'DEPENDENCY_UNAVAILABLE'
  | 'INTERNAL';

export interface OrchestratorErrorOptions {
  /** Whether trying again later may succeed. @default false */
  retryable?: boolean;
  cause?: unknown;
  /** Structured, client-safe detail (e.g. the list of validation issues). */
  details?: unknown;
}

/** The one error class of the system: a stable `code`, a human message, and whether to retry. */
export class OrchestratorError extends Error {
  override readonly name = 'OrchestratorError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: OrchestratorErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

export const isOrchestratorError = (e: unknown): e is OrchestratorError =>
  e instanceof Error && e.name === 'OrchestratorError';

/** A short, single-line description of any thrown value, for logs and stored job errors. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
}
