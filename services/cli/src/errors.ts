/**
 * The CLI's failures. Each maps to one exit code (see exit-codes.ts): `ApiError` → 1,
 * `UsageError` → 2, `ApiUnreachableError` → 3.
 */

/** The API answered with an error status; `code` and `message` are the API's own. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** The HTTP status. */
  readonly status: number;
  /** The API's stable error code, e.g. `JOB_NOT_FOUND`; `HTTP_<status>` when the body had none. */
  readonly code: string;
  /** The API's structured detail, e.g. the validation issues. */
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Nothing usable answered at the API URL: refused, unknown host, reset, or timed out. */
export class ApiUnreachableError extends Error {
  override readonly name = 'ApiUnreachableError';
  /** The API base URL that was tried. */
  readonly url: string;
  /** Why, in a few words, e.g. `connection refused — is it running? start it with npm start`. */
  readonly reason: string;

  constructor(url: string, reason: string, options: { cause?: unknown } = {}) {
    super(`cannot reach the API at ${url}: ${reason}`, { cause: options.cause });
    this.url = url;
    this.reason = reason;
  }
}

/** A command line that cannot be acted on, found after commander's own checks (e.g. an unreadable @file). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const isApiError = (e: unknown): e is ApiError => e instanceof Error && e.name === 'ApiError';
export const isApiUnreachableError = (e: unknown): e is ApiUnreachableError =>
  e instanceof Error && e.name === 'ApiUnreachableError';
export const isUsageError = (e: unknown): e is UsageError => e instanceof Error && e.name === 'UsageError';
