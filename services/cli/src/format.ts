import Table from 'cli-table3';
import { isApiError, isApiUnreachableError, isUsageError } from './errors.ts';
import type { DepthView, JobView, QueuesStatus } from './wire.ts';

/**
 * Human-readable output. Pure functions of the API's answers, so tests need no terminal; colors
 * are never used, so the output is the same in a terminal, a pipe and a log file.
 */

const NO_COLORS = { head: [], border: [] };

/** A borderless, left-aligned table (kubectl style) with columns two spaces apart. */
function plainTable(head: string[], rows: (string | number)[][], rightAligned: readonly number[] = []): string {
  const table = new Table({
    head,
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    colAligns: head.map((_, i) => (rightAligned.includes(i) ? 'right' : 'left')),
    style: { ...NO_COLORS, 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  table.push(...rows);
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

const formatCost = (cost: number): string => String(Math.round(cost * 1000) / 1000);

/** `orch status`: one job, field by field, then its history. */
export function formatJob(job: JobView): string {
  const fields: [string, string][] = [
    ['job', job.job_id],
    ['status', job.status],
    ['type', job.type],
    ['priority', job.priority],
    ['rows', String(job.rows)],
    ['est. runtime', `${job.estimated_runtime_sec} s`],
    ['latency-sens.', job.latency_sensitive ? 'yes' : 'no'],
    [
      'queue',
      job.queue === null
        ? '(not classified yet)'
        : `${job.queue} (cost ${job.cost === null ? '?' : formatCost(job.cost)})`,
    ],
  ];
  if (job.reason !== null) fields.push(['reason', job.reason]);
  fields.push(['attempts', `${job.attempts} of ${job.max_attempts}`]);
  fields.push(['created', job.created_at], ['updated', job.updated_at]);
  if (job.error !== null) fields.push(['error', `${job.error.code}: ${job.error.message}`]);
  if (Object.keys(job.data).length > 0) fields.push(['data', JSON.stringify(job.data)]);
  if (job.status === 'succeeded') fields.push(['result', `orch result ${job.job_id}`]);
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  const lines = fields.map(([label, value]) => `${label.padEnd(width)}${value}`);
  lines.push('history');
  for (const t of job.history) lines.push(`  ${t.at}  ${t.status}${t.note === undefined ? '' : `  (${t.note})`}`);
  return lines.join('\n');
}

/** `orch list`: one line per job. */
export function formatJobList(jobs: readonly JobView[]): string {
  if (jobs.length === 0) return 'no jobs';
  return plainTable(
    ['JOB ID', 'STATUS', 'QUEUE', 'PRIORITY', 'TYPE', 'ROWS', 'ATTEMPTS', 'CREATED'],
    jobs.map((job) => [
      job.job_id,
      job.status,
      job.queue ?? '-',
      job.priority,
      job.type,
      job.rows,
      `${job.attempts}/${job.max_attempts}`,
      job.created_at,
    ]),
    [5],
  );
}

const depthCells = (depth: DepthView): number[] => [depth.active, depth.scheduled, depth.dead_letter];

/** `orch queues` and `orch watch`: each queue's depth, then its lanes (high is drained first). */
export function formatQueues(status: QueuesStatus): string {
  const table = new Table({
    head: ['QUEUE', 'ACTIVE', 'SCHEDULED', 'DEAD-LETTER'],
    colAligns: ['left', 'right', 'right', 'right'],
    style: { ...NO_COLORS, compact: true },
  });
  for (const [name, depth] of Object.entries(status.queues)) {
    table.push([name, ...depthCells(depth)]);
    const lanes = Object.entries(depth.lanes ?? {});
    lanes.forEach(([lane, laneDepth], i) => {
      table.push([`  ${i === lanes.length - 1 ? '└' : '├'} ${lane}`, ...depthCells(laneDepth)]);
    });
  }
  return table.toString();
}

interface ValidationIssue {
  path: string;
  message: string;
}

const isIssueList = (details: unknown): details is ValidationIssue[] =>
  Array.isArray(details) &&
  details.every(
    (d) =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as ValidationIssue).path === 'string' &&
      typeof (d as ValidationIssue).message === 'string',
  );

/** What a person can do about an error status whose cause is on their side of the CLI. */
const HINTS: Readonly<Record<number, string>> = {
  401: 'hint: give the API key with --api-key or ORCH_API_KEY (an operator makes one with `orch keygen`)',
};

/**
 * An error for stderr: the API's code and message, each validation issue when there are several,
 * and a hint when the fix is the user's (a missing or wrong API key).
 */
export function formatError(e: unknown): string {
  if (isApiError(e)) {
    const lines = [`error: ${e.code} (HTTP ${e.status}): ${e.message}`];
    if (isIssueList(e.details) && e.details.length > 1) {
      for (const issue of e.details) lines.push(`  - ${issue.path}: ${issue.message}`);
    }
    const hint = HINTS[e.status];
    if (hint !== undefined) lines.push(hint);
    return lines.join('\n');
  }
  return `error: ${e instanceof Error ? e.message : String(e)}`;
}

/** An error for stderr with `--json`: `{"error": {code, message, status?, details?}}`. */
export function errorJson(e: unknown): { error: Record<string, unknown> } {
  if (isApiError(e)) {
    return {
      error: {
        code: e.code,
        message: e.message,
        status: e.status,
        ...(e.details !== undefined && { details: e.details }),
      },
    };
  }
  if (isApiUnreachableError(e)) return { error: { code: 'API_UNREACHABLE', message: e.message, url: e.url } };
  if (isUsageError(e)) return { error: { code: 'USAGE', message: e.message } };
  return { error: { code: 'CLI_ERROR', message: e instanceof Error ? e.message : String(e) } };
}
