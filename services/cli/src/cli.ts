import { JOB_STATES, MAX_BATCH_SIZE, POOL_QUEUES, PRIORITIES } from '@orch/core';
import type { JobState, PoolQueue } from '@orch/core';
import { Command, CommanderError, Option } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { createApiClient, DEFAULT_TIMEOUT_IN_MS } from './api-client.ts';
import type { ApiClient, ApiClientOptions } from './api-client.ts';
import { runSubmit } from './commands/submit.ts';
import { runCancel, runList, runResult, runStatus } from './commands/jobs.ts';
import { runQueues, runWatch } from './commands/queues.ts';
import type { CommandContext, OutStream } from './context.ts';
import { UsageError, isApiError, isApiUnreachableError, isUsageError } from './errors.ts';
import { generateApiKey } from '@orch/api/auth';
import { EXIT_API_ERROR, EXIT_CODES_HELP, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE } from './exit-codes.ts';
import type { ExitCode } from './exit-codes.ts';
import { errorJson, formatError } from './format.ts';
import {
  DEFAULT_API_URL,
  DEFAULT_CHUNK_SIZE,
  parseApiUrl,
  parseBoolean,
  parseChunkSize,
  parseCount,
  parseData,
  parseIdempotencyKey,
  parseLimit,
  parseNonNegativeInteger,
  parseNonNegativeNumber,
  parseSecondsAsMs,
  resolveApiKey,
  resolveApiUrl,
  toSubmission,
} from './options.ts';
import type { SubmissionFlags } from './options.ts';

/** What the CLI needs from its process; `main.ts` passes the real ones, tests their own. */
export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  /** ORCH_API_URL and ORCH_API_KEY are read from here. */
  env: Readonly<Record<string, string | undefined>>;
  /** Runs `handler` on SIGINT instead of the default exit; returns the unsubscribe. */
  onInterrupt: (handler: () => void) => () => void;
  /** @default () => new Date() */
  now?: () => Date;
  /** @default createApiClient */
  createClient?: (options: ApiClientOptions) => ApiClient;
}

interface GlobalOptions {
  apiUrl?: string;
  apiKey?: string;
  timeout: number;
  json?: boolean;
}

const ENVIRONMENT_HELP = `Environment:
  ORCH_API_URL  the API's base URL when --api-url is not given (default: ${DEFAULT_API_URL})
  ORCH_API_KEY  the API key when --api-key is not given, sent as "Authorization: Bearer <key>"`;

const examples = (...lines: string[]): string[] => ['Examples:', ...lines.map((l) => `  $ ${l}`)];

/** Help text after a command's options, printed as written (commander wraps only descriptions). */
const helpSections = (...sections: string[][]): string => `\n${sections.map((lines) => lines.join('\n')).join('\n\n')}`;

/**
 * Runs one command line (`argv` without node and the script) and returns the exit code. Never
 * throws and never exits the process: `main.ts` does that.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    // Commander has already printed its message (and the usage) for its own errors.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    const json = program.opts<GlobalOptions>().json === true;
    io.stderr.write(`${json ? JSON.stringify(errorJson(e)) : formatError(e)}\n`);
    if (isUsageError(e)) {
      if (!json) io.stderr.write(`(run 'orch --help' for usage)\n`);
      return EXIT_USAGE;
    }
    if (isApiUnreachableError(e)) return EXIT_UNREACHABLE;
    if (isApiError(e)) return EXIT_API_ERROR;
    return EXIT_API_ERROR;
  }
}

/** The commander program: every command, option and help text. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('orch');
  program
    .description(
      'Command line of the Cloud Job Orchestrator: submit jobs, follow them, fetch their results, ' +
        'cancel them, and watch the queues, through the HTTP API.',
    )
    .version(packageJson.version, '-V, --version', 'print the version of orch')
    .addOption(
      new Option('--api-url <url>', `the API's base URL (env: ORCH_API_URL; default: ${DEFAULT_API_URL})`).argParser(
        parseApiUrl,
      ),
    )
    .addOption(
      new Option(
        '--api-key <key>',
        'sent as "Authorization: Bearer <key>" (env: ORCH_API_KEY, which keeps the key out of the process list)',
      ),
    )
    .addOption(
      new Option('--timeout <seconds>', 'give up on a request that has no answer after this long')
        .argParser(parseSecondsAsMs)
        .default(DEFAULT_TIMEOUT_IN_MS, String(DEFAULT_TIMEOUT_IN_MS / 1000)),
    )
    .option('--json', 'print machine-readable JSON on stdout and nothing else; errors as JSON on stderr')
    .helpOption('-h, --help', 'show help (for a command: orch <command> --help)')
    .helpCommand('help [command]', 'show help for a command')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .addHelpText('afterAll', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);

  /** The context of an action: the client and output of the global options. */
  const contextOf = (command: Command): CommandContext => {
    const globals = command.optsWithGlobals<GlobalOptions>();
    const createClient = io.createClient ?? createApiClient;
    const apiKey = resolveApiKey(globals.apiKey, io.env);
    return {
      client: createClient({
        baseUrl: resolveApiUrl(globals.apiUrl, io.env),
        timeoutInMs: globals.timeout,
        userAgent: `orch-cli/${packageJson.version}`,
        ...(apiKey !== undefined && { apiKey }),
      }),
      json: globals.json === true,
      stdout: io.stdout,
      stderr: io.stderr,
      onInterrupt: io.onInterrupt,
      now: io.now ?? (() => new Date()),
    };
  };

  program
    .command('submit')
    .summary('submit a job, or --count copies of it')
    .description(
      'Submit a job (POST /jobs) and print its id, or --count copies of it through POST /jobs/batch. ' +
        'Every field is optional: a flag not given leaves the field to the API, whose default is shown.',
    )
    .option('--type <name>', 'handler that runs the job (API default: synthetic)')
    .option('--rows <n>', 'data volume, an integer ≥ 0 (API default: 1000)', parseNonNegativeInteger)
    .option('--estimated-runtime-sec <seconds>', 'predicted duration, ≥ 0 (API default: 10)', parseNonNegativeNumber)
    .addOption(new Option('--priority <level>', 'urgency (API default: normal)').choices(PRIORITIES))
    .option(
      '--latency-sensitive [boolean]',
      'timing-critical: routed to the actor workers; =false sends false (API default: false)',
      parseBoolean,
    )
    .option('--no-latency-sensitive', 'sends latency_sensitive: false')
    .option(
      '--data <json|@file>',
      'handler input: a JSON object, or @path of a file holding one (API default: {})',
      parseData,
    )
    .option(
      '--count <n>',
      'submit n copies through POST /jobs/batch, with a progress bar on stderr in a terminal',
      parseCount,
    )
    .addOption(
      new Option('--chunk-size <n>', `jobs per batch request with --count (1–${MAX_BATCH_SIZE})`)
        .argParser(parseChunkSize)
        .default(DEFAULT_CHUNK_SIZE),
    )
    .option(
      '--idempotency-key <key>',
      'makes a retry safe: the API answers a repeat with the original job id(s) and creates nothing ' +
        '(with --count, batch n is sent with <key>#<n>)',
      parseIdempotencyKey,
    )
    .addHelpText(
      'after',
      helpSections(
        [
          'Routing (the classifier, default thresholds):',
          '  latency-sensitive → actor-jobs; otherwise cost = rows / 1,000,000 + runtime / 10,',
          '  × 1.5 for high and urgent: cost > 10 → spark-jobs, > 4 → ml-jobs, else batch-jobs.',
        ],
        [
          'Output:',
          '  "submitted job <id>"; with --count, the ids one per line.',
          '  --json: {"job_id", "status"}, or with --count {"job_ids": [...], "status"};',
          '  "replayed": true is added when the API replayed an idempotent submission.',
          '  If a batch fails, the ids accepted before it are still printed, then the error (exit 1 or 3).',
        ],
        examples(
          'orch submit --rows 20000 --estimated-runtime-sec 30 --priority high',
          `orch submit --latency-sensitive --data '{"seed": 7}'`,
          'orch submit --no-latency-sensitive --rows 5000000   # or --latency-sensitive=false',
          'orch submit --data @input.json --idempotency-key order-7731',
          "orch submit --count 500 --json | jq -r '.job_ids[]'",
        ),
      ),
    )
    .action(async (flags: SubmitFlags, command: Command) => {
      await runSubmit(contextOf(command), {
        submission: toSubmission(flags),
        chunkSize: flags.chunkSize,
        ...(flags.count !== undefined && { count: flags.count }),
        ...(flags.idempotencyKey !== undefined && { idempotencyKey: flags.idempotencyKey }),
      });
    });

  program
    .command('status')
    .argument('<id>', 'job id')
    .summary("show a job's status, route, attempts and history")
    .description(
      "Show a job (GET /jobs/{id}): status, the classifier's queue, cost and reason, attempts, error, history.",
    )
    .addHelpText(
      'after',
      helpSections(
        ['Output:', "  The job, field by field, then its history. --json: the API's job object."],
        examples('orch status 3f0c9a52-…', 'orch status 3f0c9a52-… --json | jq -r .status'),
      ),
    )
    .action(async (id: string, _flags: unknown, command: Command) => {
      await runStatus(contextOf(command), id);
    });

  program
    .command('list')
    .summary('list jobs, newest first, with filters')
    .description('List jobs, newest first (GET /jobs), one page, or every page with --all.')
    .addOption(new Option('--status <status>', 'only jobs in this status').choices(JOB_STATES))
    .addOption(new Option('--queue <queue>', 'only jobs routed to this pool').choices(POOL_QUEUES))
    .option('--limit <n>', "page size, 1–500 (default: the API's, 50)", parseLimit)
    .option('--cursor <cursor>', 'start at this next_cursor of an earlier page')
    .option('--all', 'follow next_cursor to the last page and print every job')
    .addHelpText(
      'after',
      helpSections(
        [
          'Output:',
          '  A table of jobs; when there are more, how to get the next page (on stderr).',
          '  --json: {"jobs": [...], "next_cursor"}; with --all, every job and "next_cursor": null.',
        ],
        examples(
          'orch list --status running',
          'orch list --status succeeded --queue batch-jobs --limit 20',
          "orch list --status failed --all --json | jq -r '.jobs[].job_id'",
        ),
      ),
    )
    .action(async (flags: ListFlags, command: Command) => {
      await runList(contextOf(command), {
        all: flags.all === true,
        query: {
          ...(flags.status !== undefined && { status: flags.status }),
          ...(flags.queue !== undefined && { queue: flags.queue }),
          ...(flags.limit !== undefined && { limit: flags.limit }),
          ...(flags.cursor !== undefined && { cursor: flags.cursor }),
        },
      });
    });

  program
    .command('cancel')
    .argument('<id>', 'job id')
    .summary('cancel a job that has not finished')
    .description(
      'Cancel a job (POST /jobs/{id}/cancel). A running job stops at its next heartbeat. A finished job ' +
        'cannot be cancelled: the API answers INVALID_TRANSITION (exit 1).',
    )
    .addHelpText(
      'after',
      helpSections(
        ['Output:', '  "cancelled job <id>". --json: the API\'s cancelled job object.'],
        examples('orch cancel 3f0c9a52-…'),
      ),
    )
    .action(async (id: string, _flags: unknown, command: Command) => {
      await runCancel(contextOf(command), id);
    });

  program
    .command('result')
    .argument('<id>', 'job id')
    .summary("print a succeeded job's result JSON")
    .description(
      "Print a succeeded job's result (GET /jobs/{id}/result) as JSON. Before the job finishes the API " +
        'answers JOB_NOT_FINISHED, for a failed or cancelled job JOB_NOT_SUCCEEDED (exit 1).',
    )
    .option('-o, --output <file>', 'write the result (indented JSON) to this file instead of stdout')
    .addHelpText(
      'after',
      helpSections(
        [
          'Output:',
          '  The result, indented JSON. --json: the result on one line (indented in a terminal);',
          '  with --output, {"job_id", "output", "bytes"}.',
        ],
        examples('orch result 3f0c9a52-…', 'orch result 3f0c9a52-… --output result.json'),
      ),
    )
    .action(async (id: string, flags: { output?: string }, command: Command) => {
      await runResult(contextOf(command), id, flags.output === undefined ? {} : { output: flags.output });
    });

  program
    .command('queues')
    .summary('show the depth of every queue and lane')
    .description(
      'Show active, scheduled (retries waiting) and dead-lettered messages of the ingest queue and each ' +
        'pool queue, and of each of their lanes (high is drained first) (GET /queues/status).',
    )
    .addHelpText(
      'after',
      helpSections(
        [
          'Output:',
          '  A table: each queue with its total, then its lanes. --json: the API\'s {"queues": {...}},',
          '  each queue {"active", "scheduled", "dead_letter", "lanes": {...}}.',
        ],
        examples('orch queues', 'orch queues --json | jq \'.queues["batch-jobs"].active\''),
      ),
    )
    .action(async (_flags: unknown, command: Command) => {
      await runQueues(contextOf(command));
    });

  program
    .command('watch')
    .summary('show live queue depths until Ctrl-C')
    .description(
      'Show the queue depths and redraw them every --interval seconds until Ctrl-C (exit 0). ' +
        'Once running, it keeps going through API restarts, showing the error until the API is back.',
    )
    .addOption(
      new Option('--interval <seconds>', 'time between two refreshes').argParser(parseSecondsAsMs).default(2000, '2'),
    )
    .addHelpText(
      'after',
      helpSections(
        [
          'Output:',
          '  The table of orch queues: redrawn in place in a terminal, appended in a pipe.',
          '  --json: one line per refresh, {"at", "queues"} (NDJSON).',
          '  If the very first refresh fails, orch watch exits like any command (1 or 3).',
        ],
        examples('orch watch', 'orch watch --interval 0.5', 'orch watch --json | jq .queues.jobqueue.active'),
      ),
    )
    .action(async (flags: { interval: number }, command: Command) => {
      await runWatch(contextOf(command), { intervalInMs: flags.interval });
    });

  program
    .command('keygen')
    .summary('make a new API key for a tenant (offline)')
    .description(
      "Make a random API key and the entry that grants it: add the entry to the API's API_KEYS or " +
        'API_KEYS_FILE (in Azure, the Key Vault secret), give the key to the client. The API stores ' +
        'only the hash, so a lost key cannot be recovered: make a new one. Calls no API.',
    )
    .requiredOption('--tenant <name>', 'the tenant the key acts for (letters, digits, ".", "_", "-")')
    .option('--admin', "the key sees every tenant's jobs and may scrape /metrics")
    .addHelpText(
      'after',
      helpSections(
        ['Output:', '  The key, then the entry for the key list. --json: {"tenant", "admin", "key", "entry"}.'],
        examples('orch keygen --tenant acme', 'orch keygen --tenant ops --admin --json'),
      ),
    )
    .action((flags: { tenant: string; admin?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const admin = flags.admin === true;
      let made: { key: string; entry: string };
      try {
        made = generateApiKey(flags.tenant, admin);
      } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
      }
      if (ctx.json) {
        ctx.stdout.write(`${JSON.stringify({ tenant: flags.tenant, admin, ...made })}\n`);
        return;
      }
      ctx.stdout.write(`key:   ${made.key}\nentry: ${made.entry}\n`);
      ctx.stderr.write('Keep the key secret; add the entry to API_KEYS or API_KEYS_FILE and restart the API.\n');
    });

  // A usage error prints commander's message, then the command's usage line and where to read more.
  for (const command of [program, ...program.commands]) {
    const name = command === program ? 'orch' : `orch ${command.name()}`;
    command.showHelpAfterError(`Usage: ${name} ${command.usage()}\n(run '${name} --help' for details)`);
  }
  return program;
}

interface SubmitFlags extends SubmissionFlags {
  count?: number;
  chunkSize: number;
  idempotencyKey?: string;
}

interface ListFlags {
  status?: JobState;
  queue?: PoolQueue;
  limit?: number;
  cursor?: string;
  all?: boolean;
}
