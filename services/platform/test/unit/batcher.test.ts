import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createBatcher } from '../../src/shared/batcher.ts';

/** A batcher that records each batch it runs and echoes its items doubled. */
function recording(options: { lingerInMs?: number; maxInFlight?: number } = {}) {
  const batches: number[][] = [];
  const batcher = createBatcher<number, number>({
    ...options,
    run: async (items) => {
      batches.push([...items]);
      await sleep(5);
      return items.map((i) => i * 2);
    },
  });
  return { batcher, batches };
}

describe('createBatcher', () => {
  it('without a linger, items added in one turn share a batch and a later item gets its own', async () => {
    const { batcher, batches } = recording();
    const first = Promise.all([batcher.add(1), batcher.add(2)]);
    await sleep(20);
    expect(await first).toEqual([2, 4]);
    expect(await batcher.add(3)).toBe(6);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('with a linger, items added a few milliseconds apart while idle share one batch', async () => {
    const { batcher, batches } = recording({ lingerInMs: 200 });
    const outcomes = [batcher.add(1)];
    await sleep(10);
    outcomes.push(batcher.add(2));
    await sleep(10);
    outcomes.push(batcher.add(3));
    expect(await Promise.all(outcomes)).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('drain runs lingering items at once and resolves when every batch has settled', async () => {
    const { batcher, batches } = recording({ lingerInMs: 60_000 });
    const outcome = batcher.add(7);
    await batcher.drain();
    expect(batches).toEqual([[7]]);
    expect(await outcome).toBe(14);
  });

  it('drain waits for batches beyond maxInFlight, and an idle batcher drains at once', async () => {
    const { batcher, batches } = recording({ maxInFlight: 1 });
    const first = batcher.add(1);
    await sleep(1); // the first batch is running: the next items queue behind it
    const rest = [batcher.add(2), batcher.add(3)];
    await batcher.drain();
    expect(batches).toEqual([[1], [2, 3]]);
    expect(await Promise.all([first, ...rest])).toEqual([2, 4, 6]);
    await batcher.drain();
  });
});
