import { z } from 'zod';
import { JOB_STATES, POOL_QUEUES, PRIORITIES } from '@orch/core';
import type { Job, JobState, QueueDepth } from '@orch/core';

/**
 * A documented JSON response: Fastify picks the serializer by media type and @fastify/swagger
 * takes the description from here, so a shared schema stays one `$ref`-able component.
 */
export const jsonResponse = <S extends z.ZodType>(schema: S, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/**
 * The API's wire format: zod schemas that validate requests, serialize responses and generate the
 * OpenAPI document, and the mapping from the domain's camelCase `Job` to the snake_case view.
 */

/** Job ids the API accepts in a path. Anything else cannot name a job, so it is a 404. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

export const jobIdParamsSchema = z.object({
  id: z.string().regex(JOB_ID_PATTERN).describe('Job id, as returned by the submission.'),
});

export const errorBodySchema = z
  .object({
    code: z.string().describe('Stable, machine-readable error code.'),
    message: z.string().describe('Human-readable explanation.'),
    details: z.unknown().optional().describe('Structured detail, e.g. the validation issues.'),
  })
  .meta({ id: 'ApiError', description: 'Every error response has this shape.' });

export type ErrorBody = z.output<typeof errorBodySchema>;

export const idempotencyHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional()
    .describe(
      'Makes the submission safe to retry: the same key with the same request returns the original job id(s) ' +
        '(with `Idempotent-Replayed: true`) and creates nothing; with a different request it is a 409 ' +
        'IDEMPOTENCY_KEY_REUSED. Keys are remembered for IDEMPOTENCY_TTL_MS (24 h by default).',
    ),
});

export const acceptedSchema = z.object({
  job_id: z.string(),
  status: z.literal('submitted'),
});

export const batchAcceptedSchema = z.object({
  job_ids: z.array(z.string()).describe('In the order of the submitted jobs.'),
  status: z.literal('submitted'),
});

const transitionViewSchema = z.object({
  status: z.enum(JOB_STATES),
  at: z.string().describe('ISO-8601 timestamp (UTC).'),
  note: z.string().optional(),
});

export const jobViewSchema = z
  .object({
    job_id: z.string(),
    status: z.enum(JOB_STATES),
    queue: z.enum(POOL_QUEUES).nullable().describe('The pool the classifier chose; null until classified.'),
    cost: z.number().nullable().describe('Estimated cost; null until classified.'),
    reason: z.string().nullable().describe('Why the classifier chose the queue; null until classified.'),
    priority: z.enum(PRIORITIES),
    rows: z.number().int().min(0),
    estimated_runtime_sec: z.number(),
    latency_sensitive: z.boolean(),
    type: z.string(),
    data: z.record(z.string(), z.unknown()),
    attempts: z.number().int().min(0).describe('How many times a worker has started the job.'),
    max_attempts: z.number().int().min(1),
    created_at: z.string(),
    updated_at: z.string(),
    history: z.array(transitionViewSchema).describe('Every transition, oldest first.'),
    error: z.object({ code: z.string(), message: z.string() }).nullable().describe('Why the last attempt failed.'),
    result_url: z.string().nullable().describe('Where to fetch the result; null unless succeeded.'),
  })
  .meta({ id: 'JobView', description: 'A job as shown by the API.' });

export type JobView = z.output<typeof jobViewSchema>;

export const listJobsQuerySchema = z.object({
  status: z.enum(JOB_STATES).optional().describe('Only jobs in this state.'),
  queue: z.enum(POOL_QUEUES).optional().describe('Only jobs routed to this pool.'),
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('Page size.'),
  cursor: z.string().min(1).max(1000).optional().describe('`next_cursor` of the previous page.'),
});

export const jobPageSchema = z.object({
  jobs: z.array(jobViewSchema).describe('Newest first.'),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

export const jobResultSchema = z.record(z.string(), z.unknown());

const depthFields = {
  active: z.number().int().min(0).describe('Waiting or being handled.'),
  scheduled: z.number().int().min(0).describe('Accepted for delivery later (retries).'),
  dead_letter: z.number().int().min(0),
};

const depthViewSchema = z.object(depthFields);

const poolDepthViewSchema = z.object({
  ...depthFields,
  lanes: z.record(z.string(), depthViewSchema).describe('Per dispatch lane (high is drained first).'),
});

export const queuesStatusSchema = z.object({
  queues: z
    .record(z.string(), poolDepthViewSchema.or(depthViewSchema))
    .describe('The ingest queue (jobqueue) and each pool queue, whose figures sum their lanes.'),
});

export type DepthView = z.output<typeof depthViewSchema>;

export const jobStatsSchema = z.object({
  jobs: z
    .object(
      Object.fromEntries(JOB_STATES.map((state) => [state, z.number().int().min(0)])) as Record<JobState, z.ZodNumber>,
    )
    .describe('Jobs in each status.'),
});

export const statusSchema = z.object({ status: z.string() });

const checkStateSchema = z.enum(['ok', 'failed']);

export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({ store: checkStateSchema, transport: checkStateSchema }),
});

export const toDepthView = (depth: QueueDepth): DepthView => ({
  active: depth.active,
  scheduled: depth.scheduled,
  dead_letter: depth.deadLetter,
});

export const resultUrlOf = (jobId: string): string => `/jobs/${encodeURIComponent(jobId)}/result`;

export function toJobView(job: Job): JobView {
  return {
    job_id: job.id,
    status: job.state,
    queue: job.decision?.queue ?? null,
    cost: job.decision?.cost ?? null,
    reason: job.decision?.reason ?? null,
    priority: job.priority,
    rows: job.rows,
    estimated_runtime_sec: job.estimatedRuntimeSec,
    latency_sensitive: job.latencySensitive,
    type: job.type,
    data: job.data,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    created_at: job.createdAt,
    updated_at: job.updatedAt,
    history: job.history.map((t) =>
      t.note === undefined ? { status: t.status, at: t.at } : { status: t.status, at: t.at, note: t.note },
    ),
    error: job.error === null ? null : { code: job.error.code, message: job.error.message },
    result_url: job.state === 'succeeded' ? resultUrlOf(job.id) : null,
  };
}
