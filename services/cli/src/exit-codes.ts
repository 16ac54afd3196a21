/**
 * The CLI's exit codes: scripts branch on them, so they are part of its contract and listed in
 * `orch --help`.
 */
export const EXIT_OK = 0;
/** The API answered with an error (its code and message are printed), or the command failed. */
export const EXIT_API_ERROR = 1;
/** Unknown command or option, a missing or malformed value. */
export const EXIT_USAGE = 2;
/** Nothing answered at the API URL: not running, wrong URL, or no answer within the timeout. */
export const EXIT_UNREACHABLE = 3;

export type ExitCode = typeof EXIT_OK | typeof EXIT_API_ERROR | typeof EXIT_USAGE | typeof EXIT_UNREACHABLE;

export const EXIT_CODES_HELP = `Exit codes:
  ${EXIT_OK}  success
  ${EXIT_API_ERROR}  the API answered with an error (its code and message are printed), or the command
     failed otherwise (e.g. the --output file cannot be written)
  ${EXIT_USAGE}  usage error: unknown command or option, missing or malformed value
  ${EXIT_UNREACHABLE}  the API cannot be reached: not running, wrong --api-url, or no answer within --timeout`;
