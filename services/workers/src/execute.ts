import { OrchestratorError } from '@orch/core';
import type { HandlerInput, HandlerRegistry } from '@orch/core';

export interface ExecuteOptions {
  handlers: HandlerRegistry;
  signal: AbortSignal;
  timeoutInMs: number;
  simulatedDurationFactor: number;
}

/**
 * Runs a job's handler under a timeout. A timeout becomes a retryable `JOB_TIMEOUT`; an unknown type
 * (the registry changed since submission) fails the job without retrying.
 */
export async function executeHandler(
  type: string,
  input: HandlerInput,
  options: ExecuteOptions,
): Promise<Record<string, unknown>> {
  const handler = options.handlers.get(type);
  if (!handler) throw new OrchestratorError('VALIDATION_FAILED', `no handler for job type "${type}"`);
  const timeout = AbortSignal.timeout(options.timeoutInMs);
  const signal = AbortSignal.any([options.signal, timeout]);
  try {
    return await handler(input, { signal, simulatedDurationFactor: options.simulatedDurationFactor });
  } catch (e) {
    if (timeout.aborted && !options.signal.aborted) {
      throw new OrchestratorError('JOB_TIMEOUT', `job exceeded its ${options.timeoutInMs} ms timeout`, {
        retryable: true,
        cause: e,
      });
    }
    throw e;
  }
}
