import cliProgress from 'cli-progress';
import { printJson, printLine, printNote } from '../context.ts';
import type { CommandContext, OutStream } from '../context.ts';
import { planChunks } from '../options.ts';
import type { SubmissionBody } from '../wire.ts';

export interface SubmitCommandOptions {
  submission: SubmissionBody;
  /** Submit this many copies through `POST /jobs/batch`; absent: one job through `POST /jobs`. */
  count?: number;
  /** Jobs per batch request (fewer when the body would be over the API's size limit). */
  chunkSize: number;
  idempotencyKey?: string;
}

/** Shows how many of `total` jobs are accepted. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A cli-progress bar on `stream` (stderr): only where a person watches it, see `runSubmit`. */
export function createProgressBar(stream: OutStream, total: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        'submitting [{bar}] {value}/{total} jobs | {percentage}% | {duration_formatted} elapsed, ETA {eta_formatted}',
      etaBuffer: 20,
      clearOnComplete: false,
      hideCursor: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (done) => bar.update(done), stop: () => bar.stop() };
}

/**
 * `orch submit`. One job: `POST /jobs`, prints its id. With `count`: copies in chunks through
 * `POST /jobs/batch`, with a progress bar on stderr when stderr is a terminal and not `--json`.
 * If a chunk fails, the ids accepted before it are still printed (on stdout), then the error is
 * thrown. With an idempotency key, chunk n is sent with `<key>#<n>`, so rerunning the same
 * command retries without duplicating the chunks that got through.
 */
export async function runSubmit(
  ctx: CommandContext,
  options: SubmitCommandOptions,
  createProgress: (stream: OutStream, total: number) => Progress = createProgressBar,
): Promise<void> {
  const { client } = ctx;
  if (options.count === undefined) {
    const { body, replayed } = await client.submitJob(options.submission, {
      ...(options.idempotencyKey !== undefined && { idempotencyKey: options.idempotencyKey }),
    });
    if (ctx.json) {
      printJson(ctx, replayed ? { ...body, replayed } : body);
      return;
    }
    printLine(ctx, `submitted job ${body.job_id}`);
    if (replayed) printNote(ctx, 'replayed: the API already had this idempotency key; no new job was created');
    printNote(ctx, `follow it with: orch status ${body.job_id}`);
    return;
  }

  const total = options.count;
  const bytesPerJob = Buffer.byteLength(JSON.stringify(options.submission));
  const chunks = planChunks(total, options.chunkSize, bytesPerJob);
  const progress = !ctx.json && ctx.stderr.isTTY === true ? createProgress(ctx.stderr, total) : undefined;
  const ids: string[] = [];
  let replayed = false;
  try {
    for (const [i, size] of chunks.entries()) {
      const submitted = await client.submitJobs(
        Array.from({ length: size }, () => options.submission),
        {
          ...(options.idempotencyKey !== undefined && { idempotencyKey: `${options.idempotencyKey}#${i + 1}` }),
        },
      );
      ids.push(...submitted.body.job_ids);
      replayed ||= submitted.replayed;
      progress?.update(ids.length);
    }
  } catch (e) {
    progress?.stop();
    if (ids.length > 0) {
      printBatch(ctx, ids, replayed);
      printNote(
        ctx,
        `${ids.length} of ${total} jobs were accepted before the failure (their ids are above)` +
          (options.idempotencyKey === undefined
            ? '; rerun with --idempotency-key to make a retry safe'
            : '; rerun the same command to submit the rest'),
      );
    }
    throw e;
  }
  progress?.stop();
  printBatch(ctx, ids, replayed);
}

function printBatch(ctx: CommandContext, ids: readonly string[], replayed: boolean): void {
  if (ctx.json) {
    printJson(ctx, { job_ids: ids, status: 'submitted', ...(replayed && { replayed }) });
    return;
  }
  printLine(ctx, `submitted ${ids.length} job${ids.length === 1 ? '' : 's'}:`);
  for (const id of ids) printLine(ctx, id);
  if (replayed) printNote(ctx, 'some chunks were replayed: the API already had their idempotency keys');
}
