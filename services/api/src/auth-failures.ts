import { isIPv6 } from 'node:net';

/**
 * Counts failed authentications (no, malformed or unknown API key) per client address, so keys
 * cannot be guessed at line rate. Each address gets a fixed window that starts at its first
 * failure; once it has failed `maxFailures` times in it, the address is refused until the window
 * ends. IPv6 addresses count per /64 (what one subscriber is usually given), IPv4-mapped ones as
 * their IPv4 address. Memory is bounded: at most `maxClients` addresses are remembered, and past
 * that the one that failed least recently is forgotten (an attacker who controls that many
 * addresses is beyond what a per-address limit can stop anyway).
 */
export interface AuthFailureLimiter {
  /** How long (ms) `address` is still refused; `undefined` when it is not. */
  blockedFor(address: string): number | undefined;
  /** Counts one failed authentication from `address`; `true` when this very failure reached the limit. */
  recordFailure(address: string): boolean;
  /** Addresses remembered now: at most `maxClients`. */
  readonly size: number;
}

export interface AuthFailureLimiterOptions {
  /** Failures an address may make per window before it is refused; a positive integer. */
  maxFailures: number;
  windowInMs: number;
  /** Addresses remembered at once. @default 10000 */
  maxClients?: number;
  /** Milliseconds since the epoch. @default Date.now */
  now?: () => number;
}

const DEFAULT_MAX_CLIENTS = 10_000;

interface Window {
  failures: number;
  endsAt: number;
}

export function createAuthFailureLimiter(options: AuthFailureLimiterOptions): AuthFailureLimiter {
  const { maxFailures, windowInMs, maxClients = DEFAULT_MAX_CLIENTS, now = Date.now } = options;
  for (const [name, value] of Object.entries({ maxFailures, windowInMs, maxClients })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  // Insertion order is failure order: re-inserting on every failure makes the first key the one
  // that failed least recently.
  const windows = new Map<string, Window>();

  const liveWindow = (key: string, at: number): Window | undefined => {
    const window = windows.get(key);
    if (window && at >= window.endsAt) {
      windows.delete(key);
      return undefined;
    }
    return window;
  };

  return {
    blockedFor(address) {
      const at = now();
      const window = liveWindow(clientKeyOf(address), at);
      return window && window.failures >= maxFailures ? window.endsAt - at : undefined;
    },
    recordFailure(address) {
      const at = now();
      const key = clientKeyOf(address);
      const window = liveWindow(key, at) ?? { failures: 0, endsAt: at + windowInMs };
      window.failures += 1;
      windows.delete(key);
      windows.set(key, window);
      for (const oldest of windows.keys()) {
        if (windows.size <= maxClients) break;
        windows.delete(oldest);
      }
      return window.failures === maxFailures;
    },
    get size() {
      return windows.size;
    },
  };
}

/** The key an address counts under: IPv4 as is, IPv4-mapped IPv6 as its IPv4, other IPv6 per /64. */
export function clientKeyOf(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail] = (address.split('%', 1)[0] ?? '').split('::');
  const groupsOf = (part: string | undefined): string[] =>
    part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
  const first = groupsOf(head);
  const last = groupsOf(tail);
  const groups =
    tail === undefined ? first : [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
