export { runCli, buildProgram } from './cli.ts';
export type { CliIo } from './cli.ts';
export { createApiClient, DEFAULT_TIMEOUT_IN_MS } from './api-client.ts';
export type { ApiClient, ApiClientOptions, RequestOptions, SubmitOptions, Submitted } from './api-client.ts';
export {
  ApiError,
  ApiUnreachableError,
  UsageError,
  isApiError,
  isApiUnreachableError,
  isUsageError,
} from './errors.ts';
export { EXIT_API_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE } from './exit-codes.ts';
export type { ExitCode } from './exit-codes.ts';
export type {
  BatchAccepted,
  DepthView,
  JobPage,
  JobQuery,
  JobView,
  QueueDepthView,
  QueuesStatus,
  SubmissionBody,
  SubmitAccepted,
  TransitionView,
} from './wire.ts';
