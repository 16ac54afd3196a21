import { OrchestratorError } from '../errors.ts';
import type { HandlerContext, HandlerInput } from './handler.ts';

/**
 * The `synthetic` job: real work proportional to `rows`. It draws `rows` integers in [0, 1e6) from
 * a PRNG (mulberry32) seeded with the FNV-1a hash of the job id, and aggregates them. Anyone can
 * recompute the result from the job id and `rows` with `computeSyntheticAggregates`.
 *
 * `data.fail_first_attempts` (integer, default 0) makes the first N attempts fail, to see retries.
 */
export interface SyntheticAggregates {
  seed: number;
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** FNV-1a over the values, as 8 hex digits. */
  checksum: string;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const YIELD_EVERY = 200_000;

/** 32-bit FNV-1a of a string's UTF-16 code units. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  }
  return hash >>> 0;
}

class Accumulator {
  readonly seed: number;
  private state: number;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  hash = FNV_OFFSET;

  constructor(seed: number) {
    this.seed = seed;
    this.state = seed;
  }

  /** mulberry32 */
  private next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  take(n: number): void {
    for (let i = 0; i < n; i++) {
      const value = Math.floor(this.next() * 1_000_000);
      this.count++;
      this.sum += value;
      if (value < this.min) this.min = value;
      if (value > this.max) this.max = value;
      this.hash = Math.imul(this.hash ^ value, FNV_PRIME);
    }
  }

  result(): SyntheticAggregates {
    const empty = this.count === 0;
    return {
      seed: this.seed,
      count: this.count,
      sum: this.sum,
      min: empty ? null : this.min,
      max: empty ? null : this.max,
      mean: empty ? null : this.sum / this.count,
      checksum: (this.hash >>> 0).toString(16).padStart(8, '0'),
    };
  }
}

/** The reference computation, synchronous: use it to verify a stored result. */
export function computeSyntheticAggregates(jobId: string, rows: number): SyntheticAggregates {
  const acc = new Accumulator(fnv1a32(jobId));
  acc.take(rows);
  return acc.result();
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(asError(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));

export async function runSynthetic(input: HandlerInput, context: HandlerContext): Promise<Record<string, unknown>> {
  const failFirst = input.data['fail_first_attempts'];
  if (failFirst !== undefined && (typeof failFirst !== 'number' || !Number.isInteger(failFirst) || failFirst < 0)) {
    throw new OrchestratorError('VALIDATION_FAILED', 'data.fail_first_attempts must be a non-negative integer');
  }
  if (typeof failFirst === 'number' && input.attempt <= failFirst) {
    throw new Error(`synthetic failure injected on attempt ${input.attempt} of ${failFirst}`);
  }
  const simulatedMs = Math.round(input.estimatedRuntimeSec * context.simulatedDurationFactor * 1000);
  await sleep(simulatedMs, context.signal);

  // Chunked so that a large job neither blocks the event loop nor ignores cancellation.
  const acc = new Accumulator(fnv1a32(input.jobId));
  for (let done = 0; done < input.rows; done += YIELD_EVERY) {
    context.signal.throwIfAborted();
    acc.take(Math.min(YIELD_EVERY, input.rows - done));
    if (done + YIELD_EVERY < input.rows) await yieldToEventLoop();
  }
  return { job_id: input.jobId, type: 'synthetic', rows: input.rows, simulated_ms: simulatedMs, ...acc.result() };
}
