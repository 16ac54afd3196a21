/** What a handler receives: the job's own input, never the store or the queue. */
export interface HandlerInput {
  jobId: string;
  rows: number;
  estimatedRuntimeSec: number;
  data: Record<string, unknown>;
  /** 1 on the first attempt. */
  attempt: number;
}

export interface HandlerContext {
  /** Aborts on timeout, cancellation or shutdown: stop promptly and throw. */
  signal: AbortSignal;
  /** Simulated duration = `estimatedRuntimeSec` × this factor (0 in tests). */
  simulatedDurationFactor: number;
}

/** Runs one job and returns its JSON result. Throwing a non-retryable `OrchestratorError` fails the job at once. */
export type JobHandler = (input: HandlerInput, context: HandlerContext) => Promise<Record<string, unknown>>;

/** Handlers by job `type`. The API accepts only types registered here. */
export type HandlerRegistry = ReadonlyMap<string, JobHandler>;
