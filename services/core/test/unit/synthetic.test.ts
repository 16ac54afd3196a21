import { describe, expect, it } from 'vitest';
import { computeSyntheticAggregates, fnv1a32, runSynthetic } from '@orch/core';

const context = { signal: new AbortController().signal, simulatedDurationFactor: 0 };
const input = (jobId: string, rows: number, data: Record<string, unknown> = {}, attempt = 1) => ({
  jobId,
  rows,
  estimatedRuntimeSec: 10,
  data,
  attempt,
});

describe('synthetic job', () => {
  it('is deterministic per job id and matches the reference computation', async () => {
    const result = await runSynthetic(input('job-a', 250_000), context);
    expect(result).toMatchObject(computeSyntheticAggregates('job-a', 250_000));
    expect(await runSynthetic(input('job-a', 250_000), context)).toEqual(result);
    expect((await runSynthetic(input('job-b', 250_000), context))['checksum']).not.toBe(result['checksum']);
  });

  it('computes consistent aggregates', () => {
    const agg = computeSyntheticAggregates('x', 10_000);
    expect(agg.count).toBe(10_000);
    expect(agg.mean).toBeCloseTo(agg.sum / 10_000, 9);
    expect(agg.min).toBeGreaterThanOrEqual(0);
    expect(agg.max).toBeLessThan(1_000_000);
    expect(agg.min!).toBeLessThanOrEqual(agg.max!);
    expect(agg.checksum).toMatch(/^[0-9a-f]{8}$/);
    expect(agg.seed).toBe(fnv1a32('x'));
  });

  it('handles zero rows', () => {
    expect(computeSyntheticAggregates('x', 0)).toMatchObject({ count: 0, sum: 0, min: null, max: null, mean: null });
  });

  it('uses the standard FNV-1a hash', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
  });

  it('fails the first N attempts when asked, then succeeds', async () => {
    await expect(runSynthetic(input('j', 10, { fail_first_attempts: 2 }, 2), context)).rejects.toThrow(/attempt 2/);
    await expect(runSynthetic(input('j', 10, { fail_first_attempts: 2 }, 3), context)).resolves.toMatchObject({
      count: 10,
    });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(
      runSynthetic(input('j', 1_000_000), { signal: controller.signal, simulatedDurationFactor: 0 }),
    ).rejects.toThrow('cancelled');
  });

  it('waits the simulated duration, abortably', async () => {
    const controller = new AbortController();
    const run = runSynthetic(input('j', 10), { signal: controller.signal, simulatedDurationFactor: 100 });
    controller.abort(new Error('stop'));
    await expect(run).rejects.toThrow('stop');
  });
});
