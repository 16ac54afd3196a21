import { ApiError, ApiUnreachableError } from './errors.ts';
import type {
  BatchAccepted,
  JobPage,
  JobQuery,
  JobView,
  QueuesStatus,
  SubmissionBody,
  SubmitAccepted,
} from './wire.ts';

/** @default 30 s: long enough for a 1,000-job batch on a busy embedded system. */
export const DEFAULT_TIMEOUT_IN_MS = 30_000;

export interface ApiClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8000`; a path prefix (`https://host/orch`) is kept. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Per request, from sending it to reading the whole answer. @default 30000 */
  timeoutInMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default 'orch-cli' */
  userAgent?: string;
}

export interface RequestOptions {
  /** Cancels the request; the call then rejects with the signal's reason. */
  abortSignal?: AbortSignal;
}

export interface SubmitOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key`: the same key with the same request answers with the original job
   * id(s) and creates nothing.
   */
  idempotencyKey?: string;
}

export interface Submitted<T> {
  body: T;
  /** The API answered `Idempotent-Replayed: true`: no new job was created. */
  replayed: boolean;
}

/**
 * The orchestrator's HTTP API. Every method rejects with an `ApiError` when the API answers with
 * an error status (carrying its `code` and `message`), and with an `ApiUnreachableError` when
 * nothing usable answers (refused, unknown host, reset, or no answer within the timeout).
 */
export interface ApiClient {
  /** The base URL as given, without a trailing slash (for messages). */
  readonly baseUrl: string;
  /** `POST /jobs`. */
  submitJob(body: SubmissionBody, options?: SubmitOptions): Promise<Submitted<SubmitAccepted>>;
  /** `POST /jobs/batch`: 1 to 1,000 jobs, all validated before any is created. */
  submitJobs(bodies: readonly SubmissionBody[], options?: SubmitOptions): Promise<Submitted<BatchAccepted>>;
  /** `GET /jobs/{id}`; an unknown id is an `ApiError` with code `JOB_NOT_FOUND`. */
  getJob(id: string, options?: RequestOptions): Promise<JobView>;
  /** `GET /jobs`: one page, newest first. */
  getJobPage(query?: JobQuery, options?: RequestOptions): Promise<JobPage>;
  /** Every job matching `query`, following `next_cursor` page after page (`limit` is the page size). */
  listJobs(query?: JobQuery, options?: RequestOptions): AsyncIterable<JobView>;
  /** `GET /jobs/{id}/result`: the handler's JSON result of a succeeded job. */
  getJobResult(id: string, options?: RequestOptions): Promise<Record<string, unknown>>;
  /** `POST /jobs/{id}/cancel`: the cancelled job. */
  cancelJob(id: string, options?: RequestOptions): Promise<JobView>;
  /** `GET /queues/status`. */
  getQueuesStatus(options?: RequestOptions): Promise<QueuesStatus>;
}

interface Call {
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  abortSignal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const jobPath = (id: string, suffix = ''): string => `jobs/${encodeURIComponent(id)}${suffix}`;

export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = new URL(options.baseUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new RangeError(`the API URL must be http or https, got ${options.baseUrl}`);
  }
  // Relative paths resolve under the base only when it ends with a slash.
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const timeoutInMs = options.timeoutInMs ?? DEFAULT_TIMEOUT_IN_MS;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const userAgent = options.userAgent ?? 'orch-cli';

  async function call(c: Call): Promise<Answer> {
    const url = new URL(c.path, base);
    for (const [key, value] of Object.entries(c.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': userAgent, ...c.headers };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    const timeout = AbortSignal.timeout(timeoutInMs);
    const signal = c.abortSignal ? AbortSignal.any([timeout, c.abortSignal]) : timeout;

    let status: number;
    let responseHeaders: Headers;
    let text: string;
    try {
      const res = await fetchImpl(url, {
        method: c.method,
        headers,
        ...(c.body !== undefined && { body: JSON.stringify(c.body) }),
        signal,
      });
      status = res.status;
      responseHeaders = res.headers;
      text = await res.text();
    } catch (e) {
      if (c.abortSignal?.aborted) throw c.abortSignal.reason;
      throw new ApiUnreachableError(baseUrl, unreachableReason(e, url, timeoutInMs), { cause: e });
    }

    if (status < 200 || status > 299) throw toApiError(status, text);
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw invalidResponse(status, `${c.method} /${c.path} answered with a body that is not JSON`);
    }
    return { status, headers: responseHeaders, body };
  }

  /** A light check of what the CLI relies on, so a wrong `--api-url` is not misread silently. */
  function expect<T>(answer: Answer, ok: (body: Record<string, unknown>) => boolean, what: string): T {
    if (!isRecord(answer.body) || !ok(answer.body)) {
      throw invalidResponse(answer.status, `expected ${what}, got ${preview(answer.body)}`);
    }
    return answer.body as T;
  }

  const isJob = (b: Record<string, unknown>): boolean => typeof b.job_id === 'string' && typeof b.status === 'string';

  const submitHeaders = (options: SubmitOptions | undefined): Record<string, string> =>
    options?.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey };

  const replayedOf = (answer: Answer): boolean => answer.headers.get('idempotent-replayed') === 'true';

  async function getJobPage(query: JobQuery = {}, options: RequestOptions = {}): Promise<JobPage> {
    const answer = await call({
      method: 'GET',
      path: 'jobs',
      query: { status: query.status, queue: query.queue, limit: query.limit, cursor: query.cursor },
      abortSignal: options.abortSignal,
    });
    return expect<JobPage>(
      answer,
      (b) => Array.isArray(b.jobs) && (b.next_cursor === null || typeof b.next_cursor === 'string'),
      'a page of jobs ({jobs, next_cursor})',
    );
  }

  return {
    baseUrl,

    async submitJob(body, options) {
      const answer = await call({
        method: 'POST',
        path: 'jobs',
        body,
        headers: submitHeaders(options),
        abortSignal: options?.abortSignal,
      });
      const accepted = expect<SubmitAccepted>(answer, (b) => typeof b.job_id === 'string', 'a job id');
      return { body: accepted, replayed: replayedOf(answer) };
    },

    async submitJobs(bodies, options) {
      const answer = await call({
        method: 'POST',
        path: 'jobs/batch',
        body: { jobs: bodies },
        headers: submitHeaders(options),
        abortSignal: options?.abortSignal,
      });
      const accepted = expect<BatchAccepted>(
        answer,
        (b) => Array.isArray(b.job_ids) && b.job_ids.length === bodies.length,
        `${bodies.length} job ids`,
      );
      return { body: accepted, replayed: replayedOf(answer) };
    },

    async getJob(id, options) {
      const answer = await call({ method: 'GET', path: jobPath(id), abortSignal: options?.abortSignal });
      return expect<JobView>(answer, isJob, 'a job');
    },

    getJobPage,

    async *listJobs(query = {}, options = {}) {
      let cursor = query.cursor;
      for (;;) {
        const page = await getJobPage({ ...query, cursor }, options);
        yield* page.jobs;
        if (page.next_cursor === null) return;
        if (page.next_cursor === cursor) {
          throw invalidResponse(200, `GET /jobs answered the same next_cursor again (${cursor})`);
        }
        cursor = page.next_cursor;
      }
    },

    async getJobResult(id, options) {
      const answer = await call({ method: 'GET', path: jobPath(id, '/result'), abortSignal: options?.abortSignal });
      return expect<Record<string, unknown>>(answer, () => true, 'a JSON object');
    },

    async cancelJob(id, options) {
      // No body: the API rejects a body that is not JSON, and needs none.
      const answer = await call({ method: 'POST', path: jobPath(id, '/cancel'), abortSignal: options?.abortSignal });
      return expect<JobView>(answer, isJob, 'the cancelled job');
    },

    async getQueuesStatus(options) {
      const answer = await call({ method: 'GET', path: 'queues/status', abortSignal: options?.abortSignal });
      return expect<QueuesStatus>(answer, (b) => isRecord(b.queues), 'queue depths ({queues})');
    },
  };
}

/** The API's error body is `{code, message, details?}`; `{error: {…}}` is read too. */
export function toApiError(status: number, text: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : parsed;
  if (isRecord(body) && typeof body.code === 'string' && typeof body.message === 'string') {
    return new ApiError(status, body.code, body.message, body.details);
  }
  return new ApiError(
    status,
    `HTTP_${status}`,
    `the API answered HTTP ${status} without a JSON error body; is the API URL that of the orchestrator?`,
  );
}

const invalidResponse = (status: number, detail: string): ApiError =>
  new ApiError(status, 'INVALID_RESPONSE', `unexpected answer from the API: ${detail}`);

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function errorCodeOf(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const { code } = e as { code?: unknown };
  if (typeof code === 'string') return code;
  // Several addresses tried (happy eyeballs): the first one's code tells enough.
  if (e instanceof AggregateError) return errorCodeOf(e.errors[0]);
  return undefined;
}

/** Why a request got no answer, in words a user can act on. */
export function unreachableReason(e: unknown, url: URL, timeoutInMs: number): string {
  if (e instanceof Error && e.name === 'TimeoutError') {
    return `no answer within ${timeoutInMs / 1000} s (raise --timeout if the API is only slow)`;
  }
  const cause = e instanceof Error ? e.cause : undefined;
  const code = errorCodeOf(cause) ?? errorCodeOf(e);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused — is it running? start it with npm start';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `unknown host ${url.hostname} — check --api-url or ORCH_API_URL`;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'the connection was closed before the API answered';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host ${url.hostname} is unreachable`;
  }
  if (cause instanceof Error && cause.message) return cause.message;
  return e instanceof Error ? e.message : String(e);
}
