import { createHash } from 'node:crypto';
import { OrchestratorError } from '@orch/core';
import type { IdempotencyRecord, JobSubmission } from '@orch/core';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Keys are opaque to us: 1–255 visible ASCII characters, e.g. a UUID. */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The header's value, `undefined` when absent; a malformed key is a 400. */
export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers[IDEMPOTENCY_HEADER];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !KEY_PATTERN.test(value)) {
    throw new OrchestratorError('VALIDATION_FAILED', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
      details: [{ path: 'headers.idempotency-key', message: 'expected 1 to 255 visible ASCII characters' }],
    });
  }
  return value;
}

/** JSON with object keys sorted, so equal requests hash equally whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The request's identity: the route kind and the normalized submissions (defaults applied), so a
 * retried request matches however its JSON was written.
 */
export function requestHashOf(route: 'single' | 'batch', submissions: readonly JobSubmission[]): string {
  return createHash('sha256').update(canonical({ route, submissions })).digest('base64url');
}

/** The jobs of a previous request with this key; a different request under the key is a 409. */
export function replayOf(record: IdempotencyRecord, requestHash: string): string[] {
  if (record.requestHash !== requestHash) {
    throw new OrchestratorError(
      'IDEMPOTENCY_KEY_REUSED',
      `Idempotency-Key was already used with a different request (until ${record.expiresAt})`,
    );
  }
  return record.jobIds;
}
