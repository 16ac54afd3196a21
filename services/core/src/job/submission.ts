import { z } from 'zod';
import { OrchestratorError } from '../errors.ts';
import { PRIORITIES, type Job, type Priority } from './job.ts';

/** Upper bounds that keep one job from monopolising a worker; documented in the README. */
export const MAX_ROWS = 1_000_000_000;
export const MAX_ESTIMATED_RUNTIME_SEC = 7 * 24 * 3600;
export const MAX_BATCH_SIZE = 1000;

/**
 * The customer's submission contract (snake_case, as it appears on the wire). Every field is
 * optional with a default; an explicit `null`, a wrong type, a negative number or an unknown
 * priority is rejected. Unknown fields are rejected too, so a typo never silently becomes a default.
 */
export const jobSubmissionSchema = z
  .strictObject({
    rows: z.number().int().min(0).max(MAX_ROWS).default(1000).describe('Data volume (records).'),
    estimated_runtime_sec: z
      .number()
      .min(0)
      .max(MAX_ESTIMATED_RUNTIME_SEC)
      .default(10)
      .describe('Predicted duration in seconds.'),
    priority: z.enum(PRIORITIES).default('normal').describe('Urgency.'),
    latency_sensitive: z.boolean().default(false).describe('Timing-critical: routed to actor workers.'),
    type: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z][a-z0-9_.-]*$/, 'must be a lowercase handler name')
      .default('synthetic')
      .describe('Which handler runs the job.'),
    data: z.record(z.string(), z.unknown()).default({}).describe('Handler input.'),
  })
  .describe('A job submission.');

export type JobSubmissionInput = z.input<typeof jobSubmissionSchema>;
export type JobSubmission = z.output<typeof jobSubmissionSchema>;

export const batchSubmissionSchema = z.strictObject({
  jobs: z.array(jobSubmissionSchema).min(1).max(MAX_BATCH_SIZE),
});

/** A validation problem, safe to show to a client. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export function toValidationIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map(String);
    // Name each unknown field at its own path, so a typo is pointed at directly.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...at, key].join('.'), message: 'unknown field' }));
    }
    return [{ path: at.join('.') || '(body)', message: issue.message }];
  });
}

/**
 * Parses one submission, or throws `VALIDATION_FAILED` with every issue in `details`.
 * `knownTypes` is the handler registry's names: an unknown `type` is a validation failure.
 */
export function parseSubmission(input: unknown, knownTypes: ReadonlySet<string>): JobSubmission {
  // An absent body means every default; an explicit `null` body is rejected like any non-object.
  const parsed = jobSubmissionSchema.safeParse(input === undefined ? {} : input);
  if (!parsed.success) throw validationError(toValidationIssues(parsed.error));
  checkTypes([parsed.data], knownTypes, '');
  return parsed.data;
}

/** Parses a batch: all jobs are validated before any is accepted. */
export function parseBatchSubmission(input: unknown, knownTypes: ReadonlySet<string>): JobSubmission[] {
  const parsed = batchSubmissionSchema.safeParse(input);
  if (!parsed.success) throw validationError(toValidationIssues(parsed.error));
  checkTypes(parsed.data.jobs, knownTypes, 'jobs.');
  return parsed.data.jobs;
}

function checkTypes(jobs: JobSubmission[], knownTypes: ReadonlySet<string>, prefix: string): void {
  const issues: ValidationIssue[] = [];
  jobs.forEach((job, i) => {
    if (!knownTypes.has(job.type)) {
      issues.push({
        path: prefix ? `${prefix}${i}.type` : 'type',
        message: `unknown job type "${job.type}"; known types: ${[...knownTypes].sort().join(', ')}`,
      });
    }
  });
  if (issues.length > 0) throw validationError(issues);
}

function validationError(issues: ValidationIssue[]): OrchestratorError {
  const first = issues[0];
  const summary = first ? `${first.path}: ${first.message}` : 'invalid request';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new OrchestratorError('VALIDATION_FAILED', `${summary}${more}`, { details: issues });
}

export interface NewJobOptions {
  id: string;
  now: Date;
  maxAttempts: number;
  /** The owner. @default '' (no authentication) */
  tenant?: string;
}

/** A freshly accepted job, in state `submitted`. */
export function newJob(submission: JobSubmission, options: NewJobOptions): Job {
  const at = options.now.toISOString();
  return {
    id: options.id,
    tenant: options.tenant ?? '',
    state: 'submitted',
    version: 1,
    priority: submission.priority satisfies Priority,
    rows: submission.rows,
    estimatedRuntimeSec: submission.estimated_runtime_sec,
    latencySensitive: submission.latency_sensitive,
    type: submission.type,
    data: submission.data,
    decision: null,
    attempts: 0,
    maxAttempts: options.maxAttempts,
    error: null,
    resultKey: null,
    batchTaskId: null,
    createdAt: at,
    updatedAt: at,
    heartbeatAt: null,
    nextAttemptAt: null,
    history: [{ status: 'submitted', at }],
  };
}
