export interface SharedReadsOptions<V> {
  /** How long a successful answer is reused. 0: only calls made while it is in flight share it. */
  ttlInMs: number;
  /** Whether an answer counts as a success, to be reused. @default every answer */
  keep?: (value: V) => boolean;
}

/**
 * Reads by key, shared and reused: callers asking while a read of the same key is in flight share
 * it, and a successful answer is reused for `ttlInMs`; a failed one (a rejection, or an answer that
 * `keep` refuses) is not, so the next call reads again. Expired answers are forgotten on each call.
 * For management reads that a dashboard would otherwise repeat (queue depth).
 */
export function createSharedReads<K, V>(
  options: SharedReadsOptions<V>,
): (key: K, read: () => Promise<V>) => Promise<V> {
  const { ttlInMs, keep = () => true } = options;
  const entries = new Map<K, { readonly answer: Promise<V>; expiresAt: number }>();
  return (key, read) => {
    const now = Date.now();
    for (const [k, entry] of entries) if (entry.expiresAt <= now) entries.delete(k);
    const cached = entries.get(key);
    if (cached) return cached.answer;
    const entry = { answer: read(), expiresAt: Infinity }; // in flight
    entries.set(key, entry);
    const forget = (): void => {
      if (entries.get(key) === entry) entries.delete(key);
    };
    entry.answer.then((value) => {
      if (keep(value)) entry.expiresAt = Date.now() + ttlInMs;
      else forget();
    }, forget);
    return entry.answer;
  };
}
