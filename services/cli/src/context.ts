import type { ApiClient } from './api-client.ts';

/** Where the CLI writes: `process.stdout`/`process.stderr`, or a capturing stream in tests. */
export type OutStream = NodeJS.WritableStream & { isTTY?: boolean };

/** What a command works with; `cli.ts` builds it from the parsed options. */
export interface CommandContext {
  client: ApiClient;
  /** `--json`: stdout carries only JSON, errors go to stderr as JSON. */
  json: boolean;
  stdout: OutStream;
  stderr: OutStream;
  /** Runs `handler` on Ctrl-C (SIGINT) instead of the default exit; returns the unsubscribe. */
  onInterrupt: (handler: () => void) => () => void;
  now: () => Date;
}

/**
 * Writes a JSON document on stdout: indented in a terminal, one line in a pipe (for `jq`, `grep`
 * and line-oriented scripts).
 */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, ctx.stdout.isTTY ? 2 : undefined)}\n`);
}

export function printLine(ctx: CommandContext, text: string): void {
  ctx.stdout.write(`${text}\n`);
}

/** A note for a person (hints, partial progress): stderr, so stdout stays the command's output. */
export function printNote(ctx: CommandContext, text: string): void {
  if (!ctx.json) ctx.stderr.write(`${text}\n`);
}
