import {
  INGEST_QUEUE,
  MAX_BATCH_SIZE,
  OrchestratorError,
  batchSubmissionSchema,
  isTerminal,
  jobSubmissionSchema,
  messageIdOf,
  newJob,
  parseBatchSubmission,
  parseSubmission,
  resultKeyFor,
  transition,
} from '@orch/core';
import type { Job, JobMessage, JobSubmission } from '@orch/core';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import {
  acceptedSchema,
  batchAcceptedSchema,
  jobIdParamsSchema,
  jobPageSchema,
  jobResultSchema,
  jobViewSchema,
  listJobsQuerySchema,
  toJobView,
  jsonResponse,
} from '../wire.ts';
import { BODY_ERRORS, COMMON_ERRORS, errorResponses } from './shared.ts';
import type { RouteContext, ZodApp } from './shared.ts';

/** A cancel that loses a compare-and-set race re-reads and tries again, this many times in all. */
const CANCEL_ATTEMPTS = 5;

const jobLocation = (id: string): string => `/jobs/${encodeURIComponent(id)}`;

/** An absent body (no content-type, no bytes) means "all defaults"; an explicit `null` does not. */
function defaultAbsentBody(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  if (request.body === undefined) request.body = {};
  done();
}

export function registerJobRoutes(app: ZodApp, ctx: RouteContext): void {
  const { store, transport, blobs } = ctx;

  /**
   * Stores the jobs (the source of truth), then publishes their messages. A failed publish does
   * not fail the request: the jobs are accepted and stay `submitted`, and the reconciler publishes
   * every job never marked dispatched.
   */
  async function accept(
    submissions: readonly JobSubmission[],
    log: FastifyBaseLogger,
    asBatch: boolean,
  ): Promise<string[]> {
    const now = ctx.clock();
    const jobs = submissions.map((submission) =>
      newJob(submission, { id: ctx.newId(), now, maxAttempts: ctx.maxAttempts }),
    );
    await store.createJobs(jobs);
    const ids = jobs.map((job) => job.id);
    // Message ids follow core's convention, so a broker with duplicate detection drops a
    // reconciler's re-send of a message that did go out.
    const messages = jobs.map((job) => ({ body: { jobId: job.id } satisfies JobMessage, messageId: messageIdOf(job) }));
    try {
      if (asBatch) {
        await transport.sendBatch<JobMessage>(INGEST_QUEUE, messages);
      } else {
        for (const { body, messageId } of messages) await transport.send<JobMessage>(INGEST_QUEUE, body, { messageId });
      }
    } catch (e) {
      log.warn(
        { err: e, jobIds: ids },
        'accepted jobs not published; they stay submitted until the reconciler publishes them',
      );
      return ids;
    }
    try {
      await store.markDispatched(ids, ctx.clock());
    } catch (e) {
      // The messages are out; at worst the reconciler publishes them again, which consumers tolerate.
      log.warn({ err: e, jobIds: ids }, 'published jobs not marked dispatched');
    }
    return ids;
  }

  async function getJobOrThrow(id: string): Promise<Job> {
    const job = await store.getJob(id);
    if (!job) throw new OrchestratorError('JOB_NOT_FOUND', `job ${id} not found`);
    return job;
  }

  const submitSchema = {
    tags: ['jobs'],
    body: jobSubmissionSchema,
    response: {
      202: jsonResponse(acceptedSchema, 'Accepted; `Location` points at the job.'),
      ...errorResponses([...BODY_ERRORS, ...COMMON_ERRORS]),
    },
  };
  const submitDescription =
    'Accepts one job. Every field is optional (an absent body means all defaults); an explicit null, a wrong type, ' +
    'a negative number, an unknown priority, type or field is a 400 naming the field.';

  for (const url of ['/submit-job', '/jobs']) {
    app.post(
      url,
      {
        schema: {
          ...submitSchema,
          summary: url === '/jobs' ? 'Submit a job' : 'Submit a job (the original contract)',
          description: submitDescription,
        },
        preValidation: defaultAbsentBody,
      },
      async (request, reply) => {
        const submission = parseSubmission(request.body, ctx.knownTypes);
        const [id] = await accept([submission], request.log, false);
        if (id === undefined) throw new Error('no job id was assigned');
        return reply.status(202).header('location', jobLocation(id)).send({ job_id: id, status: 'submitted' });
      },
    );
  }

  app.post(
    '/jobs/batch',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Submit many jobs at once',
        description: `Accepts 1 to ${MAX_BATCH_SIZE} jobs. All are validated first: if any is invalid, none is created.`,
        body: batchSubmissionSchema,
        response: {
          202: jsonResponse(batchAcceptedSchema, 'Accepted.'),
          ...errorResponses([...BODY_ERRORS, ...COMMON_ERRORS]),
        },
      },
    },
    async (request, reply) => {
      const submissions = parseBatchSubmission(request.body, ctx.knownTypes);
      const ids = await accept(submissions, request.log, true);
      return reply.status(202).send({ job_ids: ids, status: 'submitted' });
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'List jobs',
        description: 'Newest first, optionally filtered by status and queue; follow `next_cursor` for more.',
        querystring: listJobsQuerySchema,
        response: {
          200: jsonResponse(jobPageSchema, 'A page of jobs.'),
          ...errorResponses([400, ...COMMON_ERRORS], {
            400: 'VALIDATION_FAILED: a bad status, queue, limit or cursor.',
          }),
        },
      },
    },
    async (request) => {
      const { status, queue, limit, cursor } = request.query;
      const page = await store.queryJobs({
        limit,
        ...(status !== undefined && { state: status }),
        ...(queue !== undefined && { queue }),
        ...(cursor !== undefined && { cursor }),
      });
      return { jobs: page.jobs.map(toJobView), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Get a job',
        params: jobIdParamsSchema,
        response: { 200: jsonResponse(jobViewSchema, 'The job.'), ...errorResponses([404, ...COMMON_ERRORS]) },
      },
    },
    async (request) => toJobView(await getJobOrThrow(request.params.id)),
  );

  app.get(
    '/jobs/:id/result',
    {
      schema: {
        tags: ['jobs'],
        summary: "Get a succeeded job's result",
        params: jobIdParamsSchema,
        response: {
          200: jsonResponse(jobResultSchema, "The job handler's JSON result."),
          ...errorResponses([404, 409, ...COMMON_ERRORS], {
            409: 'JOB_NOT_FINISHED (still in progress) or JOB_NOT_SUCCEEDED (failed or cancelled).',
          }),
        },
      },
    },
    async (request) => {
      const job = await getJobOrThrow(request.params.id);
      if (!isTerminal(job.state)) {
        throw new OrchestratorError('JOB_NOT_FINISHED', `job ${job.id} is ${job.state}; its result is not ready yet`);
      }
      if (job.state !== 'succeeded') {
        throw new OrchestratorError('JOB_NOT_SUCCEEDED', `job ${job.id} is ${job.state}; it has no result`);
      }
      const key = job.resultKey ?? resultKeyFor(job.id);
      const bytes = await blobs.downloadBlob(key);
      // A succeeded job without a readable result is our inconsistency, not the client's: a 500.
      if (bytes === undefined) throw new Error(`result blob ${key} of succeeded job ${job.id} is missing`);
      const result: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
      if (typeof result !== 'object' || result === null || Array.isArray(result)) {
        throw new Error(`result blob ${key} of job ${job.id} is not a JSON object`);
      }
      return result as Record<string, unknown>;
    },
  );

  app.post(
    '/jobs/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job',
        description: 'Moves a job that has not finished to `cancelled`; a running job stops at its next heartbeat.',
        params: jobIdParamsSchema,
        response: {
          200: jsonResponse(jobViewSchema, 'The cancelled job.'),
          ...errorResponses([...BODY_ERRORS, 404, 409, ...COMMON_ERRORS], {
            400: 'INVALID_JSON: a body was sent and is not JSON (no body is needed).',
            409: 'INVALID_TRANSITION (the job already finished) or CONFLICT (kept changing under us).',
          }),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      for (let attempt = 1; attempt <= CANCEL_ATTEMPTS; attempt++) {
        const job = await getJobOrThrow(id);
        if (isTerminal(job.state)) {
          throw new OrchestratorError(
            'INVALID_TRANSITION',
            `job ${id} is already ${job.state} and cannot be cancelled`,
            {
              details: { status: job.state },
            },
          );
        }
        const next = transition(job, 'cancelled', { at: ctx.clock(), note: 'cancelled by request' });
        const stored = await store.updateJob(next, { ifVersion: job.version });
        if (stored) return toJobView(stored);
        request.log.debug({ jobId: id, attempt }, 'cancel lost a race with another update; retrying');
      }
      throw new OrchestratorError('CONFLICT', `job ${id} kept changing while being cancelled; try again`);
    },
  );
}
