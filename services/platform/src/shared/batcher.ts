export interface BatcherOptions<I, O> {
  /** Runs one batch; returns one outcome per item, in order. A throw fails every item of the batch. */
  run: (items: readonly I[]) => Promise<readonly O[]>;
  /** Batches running at once; while they run, new items wait and form the next batch. @default 1 */
  maxInFlight?: number;
  /** Items per batch at most. @default 500 */
  maxBatchSize?: number;
  /**
   * Items that must not share a batch (e.g. two updates of one row) get the same key; a later one
   * waits for the next batch.
   */
  keyOf?: (item: I) => string;
  /**
   * How long an item that arrives while the batcher is idle waits for others to share its batch.
   * For work nobody waits on (bookkeeping): a quiet service then sends one statement per interval
   * instead of one per item. @default 0 (the next event-loop turn)
   */
  lingerInMs?: number;
}

export interface Batcher<I, O> {
  add(item: I): Promise<O>;
  /** Runs everything added so far without lingering; resolves once every batch has settled. */
  drain(): Promise<void>;
}

interface Pending<I, O> {
  item: I;
  resolve: (outcome: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: calls made while earlier batches are running (or within one event-loop turn) are
 * run together, so a busy service sends one statement for many jobs instead of one each, while an
 * idle one waits no longer than a `setImmediate` (or its `lingerInMs`, for work nobody awaits).
 */
export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
  const maxInFlight = options.maxInFlight ?? 1;
  const maxBatchSize = options.maxBatchSize ?? 500;
  let queue: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;
  let lingering: NodeJS.Timeout | undefined;
  const running = new Set<Promise<void>>();

  const take = (): Pending<I, O>[] => {
    if (!options.keyOf) return queue.splice(0, maxBatchSize);
    const keys = new Set<string>();
    const batch: Pending<I, O>[] = [];
    const rest: Pending<I, O>[] = [];
    for (const pending of queue) {
      const key = options.keyOf(pending.item);
      if (batch.length < maxBatchSize && !keys.has(key)) {
        keys.add(key);
        batch.push(pending);
      } else {
        rest.push(pending);
      }
    }
    queue = rest;
    return batch;
  };

  const flush = (): void => {
    scheduled = false;
    clearTimeout(lingering);
    lingering = undefined;
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = take();
      inFlight += 1;
      const settled = options
        .run(batch.map((p) => p.item))
        .then(
          (outcomes) => batch.forEach((p, i) => p.resolve(outcomes[i] as O)),
          (e: unknown) => batch.forEach((p) => p.reject(e)),
        )
        .finally(() => {
          inFlight -= 1;
          running.delete(settled);
          schedule(0);
        });
      running.add(settled);
    }
  };

  const schedule = (lingerInMs: number): void => {
    if (scheduled || queue.length === 0 || inFlight >= maxInFlight) return;
    scheduled = true;
    if (lingerInMs > 0) lingering = setTimeout(flush, lingerInMs);
    else setImmediate(flush);
  };

  return {
    add(item) {
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule(options.lingerInMs ?? 0);
      });
    },
    async drain() {
      while (queue.length > 0 || running.size > 0) {
        flush();
        await Promise.all(running);
      }
    },
  };
}
