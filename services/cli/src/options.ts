import { readFileSync } from 'node:fs';
import { MAX_BATCH_SIZE } from '@orch/core';
import type { Priority } from '@orch/core';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.ts';
import type { SubmissionBody } from './wire.ts';

/**
 * Parsers of option values (commander `argParser`s: a bad value is a usage error, exit 2) and the
 * mapping from flags to request bodies. Only the shape of a value is checked here; the API checks
 * ranges and known job types and answers VALIDATION_FAILED naming the field.
 */

export const DEFAULT_API_URL = 'http://127.0.0.1:8000';

/** Jobs per `POST /jobs/batch` request with `submit --count`. */
export const DEFAULT_CHUNK_SIZE = 100;

/**
 * Request bodies are kept under this size: the API rejects bodies over 1 MiB (its default
 * BODY_LIMIT) with 413, so chunks of large submissions are made smaller.
 */
export const MAX_REQUEST_BODY_BYTES = 1_000_000;

const INTEGER = /^\d+$/;
const DECIMAL = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseNonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!INTEGER.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('Must be an integer ≥ 0.');
  }
  return n;
}

export function parseNonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!DECIMAL.test(value) || !Number.isFinite(n)) throw new InvalidArgumentError('Must be a number ≥ 0.');
  return n;
}

/** A parser of integers in `[min, max]`. */
export function integerBetween(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!INTEGER.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER ? `Must be an integer ≥ ${min}.` : `Must be an integer from ${min} to ${max}.`,
      );
    }
    return n;
  };
}

export const parseCount = integerBetween(1, Number.MAX_SAFE_INTEGER);
export const parseChunkSize = integerBetween(1, MAX_BATCH_SIZE);
export const parseLimit = integerBetween(1, 500);

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  '1': true,
  false: false,
  no: false,
  '0': false,
};

/** `true`/`false` (also yes/no, 1/0, any case), for `--flag=<value>` of a boolean field. */
export function parseBoolean(value: string): boolean {
  const parsed = BOOLEANS[value.toLowerCase()];
  if (parsed === undefined) throw new InvalidArgumentError('Must be true or false.');
  return parsed;
}

/** Seconds, more than 0 (fractions allowed), as milliseconds. */
export function parseSecondsAsMs(value: string): number {
  const n = Number(value);
  if (!DECIMAL.test(value) || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('Must be a number of seconds > 0.');
  }
  return Math.round(n * 1000);
}

/** An http(s) URL; returned as given. */
export function parseApiUrl(value: string): string {
  const problem = apiUrlProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function apiUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'Must be a URL such as http://127.0.0.1:8000.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'Must be an http:// or https:// URL.';
  if (url.search || url.hash) return 'Must not have a query or fragment.';
  return undefined;
}

/** What `Idempotency-Key` accepts: 1–255 visible ASCII characters. */
export function parseIdempotencyKey(value: string): string {
  // With --count each batch request gets `<key>#<n>`, which must still fit.
  if (!/^[\x21-\x7e]{1,240}$/.test(value)) {
    throw new InvalidArgumentError('Must be 1 to 240 visible ASCII characters (no spaces).');
  }
  return value;
}

/** `--data`: a JSON object, or `@path` of a file holding one. */
export function parseData(value: string): Record<string, unknown> {
  const file = value.startsWith('@') ? value.slice(1) : undefined;
  let text = value;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new InvalidArgumentError(`Cannot read ${file}: ${(e as Error).message}.`);
    }
  }
  const subject = file ?? 'It';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`${subject} is not JSON (${(e as Error).message}).`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`${subject} must be a JSON object, e.g. '{"seed": 7}'.`);
  }
  return parsed as Record<string, unknown>;
}

/** The API URL: `--api-url`, else ORCH_API_URL, else the default. */
export function resolveApiUrl(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (flag !== undefined) return flag;
  const fromEnv = env.ORCH_API_URL;
  if (fromEnv === undefined || fromEnv === '') return DEFAULT_API_URL;
  const problem = apiUrlProblem(fromEnv);
  if (problem)
    throw new UsageError(`ORCH_API_URL is "${fromEnv}": ${problem.charAt(0).toLowerCase()}${problem.slice(1, -1)}`);
  return fromEnv;
}

/** The API key: `--api-key`, else ORCH_API_KEY; an empty value means none. */
export function resolveApiKey(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const key = flag ?? env.ORCH_API_KEY;
  return key === undefined || key === '' ? undefined : key;
}

/** The `submit` flags that become fields of the submission. */
export interface SubmissionFlags {
  type?: string;
  rows?: number;
  estimatedRuntimeSec?: number;
  priority?: Priority;
  latencySensitive?: boolean;
  data?: Record<string, unknown>;
}

/** The submission body: only the flags given, so the API applies its own defaults to the rest. */
export function toSubmission(flags: SubmissionFlags): SubmissionBody {
  return {
    ...(flags.type !== undefined && { type: flags.type }),
    ...(flags.rows !== undefined && { rows: flags.rows }),
    ...(flags.estimatedRuntimeSec !== undefined && { estimated_runtime_sec: flags.estimatedRuntimeSec }),
    ...(flags.priority !== undefined && { priority: flags.priority }),
    ...(flags.latencySensitive !== undefined && { latency_sensitive: flags.latencySensitive }),
    ...(flags.data !== undefined && { data: flags.data }),
  };
}

/**
 * Sizes of the batch requests that submit `count` copies of a submission of `bytesPerJob` bytes:
 * at most `chunkSize` jobs each, fewer when that would make a body over `maxBodyBytes`.
 */
export function planChunks(
  count: number,
  chunkSize: number,
  bytesPerJob: number,
  maxBodyBytes = MAX_REQUEST_BODY_BYTES,
): number[] {
  const envelope = '{"jobs":[]}'.length;
  const fit = Math.max(1, Math.floor((maxBodyBytes - envelope) / (bytesPerJob + 1)));
  const size = Math.min(chunkSize, fit);
  const sizes: number[] = [];
  for (let left = count; left > 0; left -= size) sizes.push(Math.min(size, left));
  return sizes;
}
