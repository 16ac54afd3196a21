import {
  classify,
  dispatchJobs,
  MAX_BATCH_SIZE,
  OrchestratorError,
  batchSubmissionSchema,
  isOrchestratorError,
  isTerminal,
  jobSubmissionSchema,
  newJob,
  parseBatchSubmission,
  parseSubmission,
  resultKeyFor,
  transition,
} from '@orch/core';
import type { IdempotencyRecord, Job, JobSubmission, PoolQueue, Priority } from '@orch/core';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { idempotencyKeyOf, replayOf, requestHashOf } from '../idempotency.ts';
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
  idempotencyHeadersSchema,
} from '../wire.ts';
import { BODY_ERRORS, COMMON_ERRORS, errorResponses } from './shared.ts';
import type { RouteContext, ZodApp } from './shared.ts';

/** A cancel that loses a compare-and-set race re-reads and tries again, this many times in all. */
const CANCEL_ATTEMPTS = 5;

const jobLocation = (id: string): string => `/jobs/${encodeURIComponent(id)}`;

const IDEMPOTENCY_ERRORS = {
  409:
    'IDEMPOTENCY_KEY_REUSED: this Idempotency-Key was used with a different request; or ' +
    'IDEMPOTENCY_KEY_IN_USE: another request with this key was being answered at the same moment (retry it; ' +
    'see `Retry-After`).',
};

/** Set on a 202 that repeats an earlier answer for the same Idempotency-Key and request. */
const REPLAYED_HEADER = 'idempotent-replayed';

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
    request: FastifyRequest,
    asBatch: boolean,
  ): Promise<{ ids: string[]; replayed: boolean }> {
    const log = request.log;
    const now = ctx.clock();
    const { tenant } = ctx.principalOf(request);
    const key = idempotencyKeyOf(request.headers);
    const requestHash = key === undefined ? '' : requestHashOf(asBatch ? 'batch' : 'single', submissions);
    if (key !== undefined) {
      const previous = await store.getIdempotencyRecord(tenant, key, now);
      if (previous) return { ids: replayOf(previous, requestHash), replayed: true };
    }
    const jobs = submissions.map((submission) =>
      newJob(submission, { id: ctx.newId(), now, maxAttempts: ctx.maxAttempts, tenant }),
    );
    const idempotency: IdempotencyRecord | undefined =
      key === undefined
        ? undefined
        : {
            tenant,
            key,
            requestHash,
            jobIds: jobs.map((job) => job.id),
            createdAt: now.toISOString(),
            expiresAt: new Date(now.getTime() + ctx.idempotencyTtlInMs).toISOString(),
          };
    await ctx.quota.reserve(tenant, jobs.length);
    try {
      await store.createJobs(jobs, idempotency ? { idempotency } : {});
    } catch (e) {
      ctx.quota.release(tenant, jobs.length);
      // Another request with this key won the race: answer as its replay.
      if (!idempotency || !isOrchestratorError(e) || e.code !== 'IDEMPOTENCY_KEY_IN_USE') throw e;
      const winner = await store.getIdempotencyRecord(idempotency.tenant, idempotency.key, now);
      // The winner's record cannot be read back (it expired meanwhile, or is not visible yet): a
      // retry will find it, or find the key free.
      if (!winner) {
        throw new OrchestratorError(
          'IDEMPOTENCY_KEY_IN_USE',
          'another request with this Idempotency-Key was being answered at the same time; retry it',
          { cause: e },
        );
      }
      return { ids: replayOf(winner, requestHash), replayed: true };
    }
    countSubmissions(jobs);
    const ids = jobs.map((job) => job.id);
    // Message ids follow core's convention, so a broker with duplicate detection drops a
    // reconciler's re-send of a message that did go out. Urgent and high jobs take the ingest
    // queue's high lane.
    try {
      await dispatchJobs(transport, jobs, now);
    } catch (e) {
      log.warn(
        { err: e, jobIds: ids },
        'accepted jobs not published; they stay submitted until the reconciler publishes them',
      );
      return { ids, replayed: false };
    }
    // Not awaited: the messages are out, and the answer need not wait for bookkeeping. If the mark
    // is lost, the reconciler publishes them again, which consumers tolerate.
    store.markDispatched(ids, ctx.clock()).catch((e: unknown) => {
      log.warn({ err: e, jobIds: ids }, 'published jobs not marked dispatched');
    });
    return { ids, replayed: false };
  }

  /** Counts accepted jobs by the pool the scheduler's classifier (a pure function) will pick, and priority. */
  function countSubmissions(jobs: readonly Job[]): void {
    const counts = new Map<string, { queue: PoolQueue; priority: Priority; count: number }>();
    for (const job of jobs) {
      const queue = classify(job, ctx.classifier).queue;
      const entry = counts.get(`${queue}/${job.priority}`) ?? { queue, priority: job.priority, count: 0 };
      entry.count += 1;
      counts.set(`${queue}/${job.priority}`, entry);
    }
    for (const { queue, priority, count } of counts.values()) ctx.metrics.jobsSubmitted(queue, priority, count);
  }

  /** The job, if the request may see it: another tenant's job does not exist for a non-admin key. */
  async function getJobOrThrow(id: string, request: FastifyRequest): Promise<Job> {
    const job = await store.getJob(id);
    const principal = ctx.principalOf(request);
    if (!job || (!principal.admin && job.tenant !== principal.tenant)) {
      throw new OrchestratorError('JOB_NOT_FOUND', `job ${id} not found`);
    }
    return job;
  }

  const submitSchema = {
    tags: ['jobs'],
    headers: idempotencyHeadersSchema,
    body: jobSubmissionSchema,
    response: {
      202: jsonResponse(acceptedSchema, 'Accepted; `Location` points at the job.'),
      ...errorResponses([...BODY_ERRORS, ...COMMON_ERRORS, 409], IDEMPOTENCY_ERRORS),
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
        const { ids, replayed } = await accept([submission], request, false);
        const [id] = ids;
        if (id === undefined) throw new Error('no job id was assigned');
        if (replayed) void reply.header(REPLAYED_HEADER, 'true');
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
        headers: idempotencyHeadersSchema,
        body: batchSubmissionSchema,
        response: {
          202: jsonResponse(batchAcceptedSchema, 'Accepted.'),
          ...errorResponses([...BODY_ERRORS, ...COMMON_ERRORS, 409], IDEMPOTENCY_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const submissions = parseBatchSubmission(request.body, ctx.knownTypes);
      const { ids, replayed } = await accept(submissions, request, true);
      if (replayed) void reply.header(REPLAYED_HEADER, 'true');
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
      const principal = ctx.principalOf(request);
      const page = await store.queryJobs({
        limit,
        ...(!principal.admin && { tenant: principal.tenant }),
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
    async (request) => toJobView(await getJobOrThrow(request.params.id, request)),
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
      const job = await getJobOrThrow(request.params.id, request);
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
        const job = await getJobOrThrow(id, request);
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
