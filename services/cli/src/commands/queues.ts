import { setTimeout as sleep } from 'node:timers/promises';
import { printJson, printLine } from '../context.ts';
import type { CommandContext } from '../context.ts';
import { isApiError } from '../errors.ts';
import { errorJson, formatError, formatQueues } from '../format.ts';
import type { QueuesStatus } from '../wire.ts';

/** `orch queues`: active, scheduled and dead-lettered messages of every queue and lane. */
export async function runQueues(ctx: CommandContext): Promise<void> {
  const status = await ctx.client.getQueuesStatus();
  if (ctx.json) printJson(ctx, status);
  else printLine(ctx, formatQueues(status));
}

export interface WatchOptions {
  /** Time between two polls. */
  intervalInMs: number;
}

/** Clear the screen and move the cursor home, like watch(1). */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

const clockTime = (date: Date): string => date.toTimeString().slice(0, 8);

/**
 * `orch watch`: polls `GET /queues/status` every interval until Ctrl-C, then resolves (exit 0).
 * In a terminal the table is redrawn in place; in a pipe each poll is appended; with `--json`
 * each poll is one line `{"at", "queues"}` (NDJSON). The first poll's failure is thrown (the
 * usual exit codes); later a 5xx or an unreachable API is shown and polling goes on, since a
 * watcher is meant to outlive a restart; a 4xx (e.g. a rejected API key) is thrown.
 */
export async function runWatch(ctx: CommandContext, options: WatchOptions): Promise<void> {
  const stop = new AbortController();
  const unsubscribe = ctx.onInterrupt(() => stop.abort());
  const seconds = options.intervalInMs / 1000;
  const redraw = !ctx.json && ctx.stdout.isTTY === true;
  const header = (): string =>
    `queue depths at ${ctx.client.baseUrl} · ${clockTime(ctx.now())} · every ${seconds} s · Ctrl-C to stop`;
  const show = (body: string): void => {
    if (redraw) ctx.stdout.write(`${CLEAR_SCREEN}${header()}\n\n${body}\n`);
    else printLine(ctx, `${header()}\n${body}\n`);
  };
  try {
    for (let poll = 1; !stop.signal.aborted; poll++) {
      let status: QueuesStatus;
      try {
        status = await ctx.client.getQueuesStatus({ abortSignal: stop.signal });
        // One line per poll, even in a terminal, so the stream stays NDJSON.
        if (ctx.json) ctx.stdout.write(`${JSON.stringify({ at: ctx.now().toISOString(), ...status })}\n`);
        else show(formatQueues(status));
      } catch (e) {
        if (stop.signal.aborted) break;
        if (poll === 1 || (isApiError(e) && e.status < 500)) throw e;
        if (ctx.json) ctx.stderr.write(`${JSON.stringify({ at: ctx.now().toISOString(), ...errorJson(e) })}\n`);
        else show(`${formatError(e)}\n(trying again)`);
      }
      try {
        await sleep(options.intervalInMs, undefined, { signal: stop.signal });
      } catch {
        break; // interrupted
      }
    }
  } finally {
    unsubscribe();
  }
}
