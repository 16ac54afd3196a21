import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { OrchestratorError } from '@orch/core';

/**
 * API keys and tenants. A key is a random secret the client sends as `Authorization: Bearer <key>`;
 * the server keeps only its SHA-256 (a key has 256 random bits, so a fast hash is enough: there is
 * nothing to guess). Each key maps to a tenant; an admin key sees every tenant's jobs.
 *
 * The key list (from `API_KEYS` or the file `API_KEYS_FILE`, in Azure a Key Vault secret mounted by
 * the Secrets Store CSI driver) holds one entry per line or comma:
 *
 *     <tenant>:<sha256 of the key, 64 hex digits>[:admin]
 *
 * with `#` starting a comment. `orch keygen --tenant <name>` makes a key and its entry.
 */

/** Who a request acts for. */
export interface Principal {
  tenant: string;
  admin: boolean;
}

export interface ApiKeyEntry extends Principal {
  /** Lower-case hex SHA-256 of the key. */
  sha256: string;
}

/** Acts for everyone: the principal of every request while the API runs without keys. */
export const ANONYMOUS_ADMIN: Principal = Object.freeze({ tenant: '', admin: true });

const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** A new random key (`orch_` + 43 base64url characters, 256 bits) and its list entry. */
export function generateApiKey(tenant: string, admin = false): { key: string; entry: string } {
  if (!TENANT_PATTERN.test(tenant)) {
    throw new OrchestratorError('VALIDATION_FAILED', `invalid tenant name ${JSON.stringify(tenant)}: ${TENANT_RULE}`);
  }
  const key = `orch_${randomBytes(32).toString('base64url')}`;
  return { key, entry: `${tenant}:${hashApiKey(key)}${admin ? ':admin' : ''}` };
}

const TENANT_RULE = '1–64 characters: letters, digits, ".", "_" and "-", starting with a letter or digit';

/**
 * Parses a key list; throws `CONFIG_INVALID` naming the first bad entry (by its position, never
 * printing the entry, which may be a pasted key).
 */
export function parseApiKeys(text: string, source: string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const seen = new Set<string>();
  const items = text
    .split(/[\n,]/)
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.length > 0);
  for (const [index, item] of items.entries()) {
    const bad = (why: string): OrchestratorError =>
      new OrchestratorError(
        'CONFIG_INVALID',
        `${source}: entry ${index + 1} ${why}; expected <tenant>:<sha256>[:admin]`,
      );
    const [tenant = '', sha256 = '', role, ...rest] = item.split(':');
    if (rest.length > 0 || (role !== undefined && role !== 'admin')) throw bad('has extra fields');
    if (!TENANT_PATTERN.test(tenant)) throw bad(`has an invalid tenant name (${TENANT_RULE})`);
    if (!SHA256_PATTERN.test(sha256.toLowerCase())) {
      throw bad('has no valid SHA-256 (64 hex digits): store the hash of a key, never the key itself');
    }
    const hash = sha256.toLowerCase();
    if (seen.has(hash)) throw bad('repeats the hash of an earlier entry');
    seen.add(hash);
    entries.push({ tenant, sha256: hash, admin: role === 'admin' });
  }
  return entries;
}

/** The key of an `Authorization: Bearer <key>` header; `undefined` without one or in another form. */
export const bearerKeyOf = (authorization: string | undefined): string | undefined =>
  authorization ? /^Bearer +(\S+) *$/i.exec(authorization)?.[1] : undefined;

/**
 * Resolves the `Authorization` header of a request to its principal. Throws `UNAUTHENTICATED` for a
 * missing, malformed or unknown key; the message never echoes the key.
 */
export type Authenticator = (authorization: string | undefined) => Principal;

export function createAuthenticator(entries: readonly ApiKeyEntry[]): Authenticator {
  const byHash = new Map(entries.map((entry) => [entry.sha256, entry]));
  return (authorization) => {
    if (authorization === undefined || authorization === '') {
      throw new OrchestratorError('UNAUTHENTICATED', 'an API key is required: send "Authorization: Bearer <key>"');
    }
    const key = bearerKeyOf(authorization);
    if (key === undefined) {
      throw new OrchestratorError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <key>"');
    }
    const hash = hashApiKey(key);
    const entry = byHash.get(hash);
    // The map lookup is on a hash of the secret; the final comparison is constant-time anyway.
    if (!entry || !timingSafeEqual(Buffer.from(entry.sha256, 'hex'), Buffer.from(hash, 'hex'))) {
      throw new OrchestratorError('UNAUTHENTICATED', 'the API key is not valid');
    }
    return { tenant: entry.tenant, admin: entry.admin };
  };
}
