import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printJson, printLine, printNote } from '../context.ts';
import type { CommandContext } from '../context.ts';
import { formatJob, formatJobList } from '../format.ts';
import type { JobQuery, JobView } from '../wire.ts';

/** `orch status <id>`: the job as the API shows it. */
export async function runStatus(ctx: CommandContext, id: string): Promise<void> {
  const job = await ctx.client.getJob(id);
  if (ctx.json) printJson(ctx, job);
  else printLine(ctx, formatJob(job));
}

export interface ListOptions {
  query: JobQuery;
  /** Follow `next_cursor` to the last page. */
  all: boolean;
}

/**
 * `orch list`: one page (`{jobs, next_cursor}` with `--json`), or with `all` every page, printed
 * as one page whose `next_cursor` is null.
 */
export async function runList(ctx: CommandContext, options: ListOptions): Promise<void> {
  if (options.all) {
    const jobs: JobView[] = [];
    for await (const job of ctx.client.listJobs(options.query)) jobs.push(job);
    if (ctx.json) printJson(ctx, { jobs, next_cursor: null });
    else printLine(ctx, formatJobList(jobs));
    return;
  }
  const page = await ctx.client.getJobPage(options.query);
  if (ctx.json) {
    printJson(ctx, page);
    return;
  }
  printLine(ctx, formatJobList(page.jobs));
  if (page.next_cursor !== null) {
    printNote(ctx, `more jobs: add --cursor ${page.next_cursor} for the next page, or --all for every page`);
  }
}

/** `orch cancel <id>`: the cancelled job. */
export async function runCancel(ctx: CommandContext, id: string): Promise<void> {
  const job = await ctx.client.cancelJob(id);
  if (ctx.json) printJson(ctx, job);
  else printLine(ctx, `cancelled job ${job.job_id}`);
}

export interface ResultOptions {
  /** Write the result (indented JSON) to this file instead of stdout. */
  output?: string;
}

/** `orch result <id>`: the succeeded job's result JSON, on stdout or in `--output`. */
export async function runResult(ctx: CommandContext, id: string, options: ResultOptions): Promise<void> {
  const result = await ctx.client.getJobResult(id);
  if (options.output === undefined) {
    if (ctx.json) printJson(ctx, result);
    else printLine(ctx, JSON.stringify(result, null, 2));
    return;
  }
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const file = path.resolve(options.output);
  try {
    await writeFile(file, text);
  } catch (e) {
    throw new Error(`cannot write the result to ${options.output}: ${(e as Error).message}`, { cause: e });
  }
  if (ctx.json) printJson(ctx, { job_id: id, output: file, bytes: Buffer.byteLength(text) });
  else printLine(ctx, `wrote the result of job ${id} to ${options.output}`);
}
