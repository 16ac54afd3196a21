import { BatchServiceClient } from '@azure/batch';
import type { BatchServiceModels } from '@azure/batch';
import type { TokenCredential } from '@azure/identity';
import type { ServiceClientCredentials, WebResourceLike } from '@azure/ms-rest-js';
import { OrchestratorError, TASK_ID_ENV, TASK_POOL_ENV, TASK_SPEC_ENV, describeError } from '@orch/core';
import type { BatchBackend, BatchPool, BatchTaskSpec, BatchTaskState } from '@orch/core';
import type { Logger } from '../runtime/logger.ts';

/** The Batch data-plane scope (the double slash is Batch's own resource id). */
const BATCH_SCOPE = 'https://batch.core.windows.net//.default';
/** Batch refuses an addtaskcollection request with more tasks, or a larger body. */
export const MAX_TASKS_PER_COLLECTION = 100;
export const MAX_COLLECTION_BYTES = 1024 * 1024;
/** Tasks are listed from this long before the previous poll or submission (clock skew, list lag). */
const POLL_OVERLAP_IN_MS = 60_000;

export interface AzureBatchBackendOptions {
  /** e.g. https://<account>.<region>.batch.azure.com */
  accountUrl: string;
  poolIds: Record<BatchPool, string>;
  /** Batch job ids are `<prefix>-<pool>`. */
  jobIdPrefix: string;
  /** What each task runs: the workers' task runner, inside `containerImage` when set. */
  taskCommandLine: string;
  containerImage?: string;
  /** Added to every task's environment (blob settings, log level, the task identity's client id). */
  taskEnvironment: Record<string, string>;
  logger: Logger;
  /** @default DefaultAzureCredential for the Batch scope */
  credentials?: ServiceClientCredentials;
  /** @default Date.now */
  now?: () => number;
  /** Let the SDK retry failed requests itself (about 30 s against a dead endpoint). @default true */
  sdkRetries?: boolean;
}

/** ms-rest-js credentials from an Entra ID token credential, for the Batch scope. */
export class BatchTokenCredentials implements ServiceClientCredentials {
  readonly #credential: TokenCredential;

  constructor(credential: TokenCredential) {
    this.#credential = credential;
  }

  async signRequest(webResource: WebResourceLike): Promise<WebResourceLike> {
    const token = await this.#credential.getToken(BATCH_SCOPE);
    if (!token)
      throw new OrchestratorError('DEPENDENCY_UNAVAILABLE', 'no Entra ID token for Azure Batch', { retryable: true });
    webResource.headers.set('authorization', `Bearer ${token.token}`);
    return webResource;
  }
}

/**
 * Azure Batch behind the `BatchBackend` port. One Batch job per pool (`<prefix>-<pool>`), created
 * on first use. Tasks go in with `addtaskcollection`, at most 100 and under 1 MB per request; each
 * runs `taskCommandLine` (the task runner in the worker image) with the spec in `ORCH_TASK_SPEC`.
 * States are read with one list request per pool and poll: running and completed tasks whose state
 * changed since the previous poll, or since the oldest outstanding submission on the first poll
 * (`stateTransitionTime`, minus an overlap), `$select`ed to id, state and execution info. Only tasks
 * this backend submitted and has not yet seen complete are remembered, so a long-lived pool job full
 * of old tasks costs nothing. A completion stays known until its pool is polled again without it
 * (the caller has then consumed it); after that the task reads as `unknown`. About ten tasks carry
 * 1,000 jobs, so 1,000 batch jobs cost one job creation, one task collection and a handful of polls.
 */
export async function createAzureBatchBackend(options: AzureBatchBackendOptions): Promise<BatchBackend> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const credentials =
    options.credentials ?? new BatchTokenCredentials(new (await import('@azure/identity')).DefaultAzureCredential());
  const client = new BatchServiceClient(credentials, options.accountUrl.replace(/\/+$/, ''), {
    ...(options.sdkRetries === false && { noRetryPolicy: true }),
  });
  const jobIdOf = (pool: BatchPool): string => `${options.jobIdPrefix}-${pool}`;
  const jobsReady = new Map<BatchPool, Promise<void>>();
  /** Tasks submitted here whose final state the caller has not consumed yet, per pool. */
  const tracked = new Map<BatchPool, Map<string, TrackedTask>>();
  const lastPoll = new Map<BatchPool, number>();
  const trackedOf = (pool: BatchPool): Map<string, TrackedTask> => {
    let tasks = tracked.get(pool);
    if (!tasks) tracked.set(pool, (tasks = new Map<string, TrackedTask>()));
    return tasks;
  };

  function ensureJob(pool: BatchPool): Promise<void> {
    let ready = jobsReady.get(pool);
    if (!ready) {
      ready = client.job
        // Explicit: a job whose tasks are all complete must stay open for the next ones.
        .add({ id: jobIdOf(pool), poolInfo: { poolId: options.poolIds[pool] }, onAllTasksComplete: 'noaction' })
        .then(
          () => logger.info({ job: jobIdOf(pool), pool: options.poolIds[pool] }, 'Batch job created'),
          (e: unknown) => {
            if (codeOf(e) === 'JobExists') return;
            throw e;
          },
        )
        .catch((e: unknown) => {
          jobsReady.delete(pool);
          throw translate(e, `creating Batch job ${jobIdOf(pool)}`);
        });
      jobsReady.set(pool, ready);
    }
    return ready;
  }

  function toParameter(pool: BatchPool, task: BatchTaskSpec): BatchServiceModels.TaskAddParameter {
    const environment = {
      ...options.taskEnvironment,
      [TASK_SPEC_ENV]: JSON.stringify(task),
      [TASK_POOL_ENV]: pool,
      [TASK_ID_ENV]: task.id,
    };
    return {
      id: task.id,
      commandLine: options.taskCommandLine,
      environmentSettings: Object.entries(environment).map(([name, value]) => ({ name, value })),
      // The orchestrator's retry policy decides about retries, not Batch.
      constraints: { maxTaskRetryCount: 0 },
      ...(options.containerImage && { containerSettings: { imageName: options.containerImage } }),
    };
  }

  /**
   * One list of the pool job's running and completed tasks whose state changed since the previous
   * poll, or since `oldestSubmission` when that is later (never before it: older tasks are not ours).
   */
  async function poll(pool: BatchPool, mine: Map<string, TrackedTask>, oldestSubmission: number): Promise<void> {
    const since = Math.max(lastPoll.get(pool) ?? -Infinity, oldestSubmission) - POLL_OVERLAP_IN_MS;
    const startedAt = now();
    const filter = `(state eq 'running' or state eq 'completed') and stateTransitionTime ge datetime'${new Date(since).toISOString()}'`;
    try {
      let page = await client.task.list(jobIdOf(pool), {
        taskListOptions: { filter, select: 'id,state,executionInfo', maxResults: 1000 },
      });
      for (;;) {
        for (const listed of page) {
          const task = listed.id === undefined ? undefined : mine.get(listed.id);
          if (!task || task.state.state === 'completed') continue;
          task.state = listed.state === 'completed' ? stateOf(listed) : { state: 'running' };
        }
        if (!page.odatanextLink) break;
        page = await client.task.listNext(page.odatanextLink);
      }
    } catch (e) {
      if (codeOf(e) !== 'JobNotFound') throw translate(e, `listing the tasks of Batch job ${jobIdOf(pool)}`);
    }
    lastPoll.set(pool, startedAt);
  }

  return {
    kind: 'azure-batch',

    async submitTasks(pool, tasks) {
      if (tasks.length === 0) return;
      await ensureJob(pool);
      const known = trackedOf(pool);
      for (const chunk of collections(tasks.map((t) => toParameter(pool, t)))) {
        const submittedAt = now();
        let result: BatchServiceModels.TaskAddCollectionResponse;
        try {
          result = await client.task.addCollection(jobIdOf(pool), chunk);
        } catch (e) {
          throw translate(e, `adding ${chunk.length} tasks to Batch job ${jobIdOf(pool)}`);
        }
        const failed = (result.value ?? []).filter((r) => r.status !== 'success' && r.error?.code !== 'TaskExists');
        for (const r of result.value ?? []) {
          if ((r.status === 'success' || r.error?.code === 'TaskExists') && !known.has(r.taskId))
            known.set(r.taskId, { state: { state: 'pending' }, submittedAt, reported: false });
        }
        if (failed.length > 0) {
          throw new OrchestratorError(
            'DEPENDENCY_UNAVAILABLE',
            `Batch refused ${failed.length} of ${chunk.length} tasks: ` +
              failed
                .map((r) => `${r.taskId}: ${r.error?.code ?? r.status} ${r.error?.message?.value ?? ''}`.trim())
                .join('; '),
            { retryable: failed.some((r) => String(r.status).toLowerCase() === 'servererror') },
          );
        }
        logger.info({ job: jobIdOf(pool), tasks: chunk.length }, 'Batch tasks added');
      }
    },

    async getTaskStates(pool, taskIds) {
      const mine = trackedOf(pool);
      const asked = new Set(taskIds);
      // A completion reported before and no longer asked about has been consumed: forget it.
      for (const [id, task] of mine) if (task.reported && !asked.has(id)) mine.delete(id);
      const outstanding = taskIds.flatMap((id) => {
        const task = mine.get(id);
        return task && task.state.state !== 'completed' ? [task] : [];
      });
      if (outstanding.length > 0) {
        await poll(
          pool,
          mine,
          outstanding.reduce((oldest, t) => Math.min(oldest, t.submittedAt), Infinity),
        );
      }
      return new Map(
        taskIds.map((id): [string, BatchTaskState] => {
          const task = mine.get(id);
          if (!task) return [id, { state: 'unknown' }];
          if (task.state.state === 'completed') task.reported = true;
          return [id, task.state];
        }),
      );
    },

    close() {
      return Promise.resolve();
    },
  };
}

interface TrackedTask {
  state: BatchTaskState;
  /** When the request that added it was sent: its state cannot have changed before. */
  submittedAt: number;
  /** Its final state has been returned to the caller. */
  reported: boolean;
}

/** Splits task parameters into addtaskcollection requests: at most 100 tasks and 1 MB each. */
export function collections(
  tasks: readonly BatchServiceModels.TaskAddParameter[],
): BatchServiceModels.TaskAddParameter[][] {
  const budget = MAX_COLLECTION_BYTES - 1024; // the envelope: {"value":[ … ]}
  const chunks: BatchServiceModels.TaskAddParameter[][] = [];
  let current: BatchServiceModels.TaskAddParameter[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const size = Buffer.byteLength(JSON.stringify(task)) + 1;
    if (size > budget) {
      throw new OrchestratorError(
        'PAYLOAD_TOO_LARGE',
        `Batch task ${task.id} is ${size} bytes; a task must stay under 1 MB`,
      );
    }
    if (current.length === MAX_TASKS_PER_COLLECTION || bytes + size > budget) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(task);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function stateOf(task: BatchServiceModels.CloudTask): BatchTaskState {
  const info = task.executionInfo;
  const exitCode = info?.exitCode ?? -1;
  const failure = info?.failureInfo
    ? `${info.failureInfo.code ?? 'TaskFailed'}: ${info.failureInfo.message ?? ''}`.trim()
    : exitCode !== 0
      ? `the task exited with code ${exitCode}`
      : undefined;
  return { state: 'completed', exitCode, ...(failure !== undefined && { failure }) };
}

function codeOf(e: unknown): string | undefined {
  const error = e as { code?: unknown; body?: { code?: unknown } };
  const code = error.body?.code ?? error.code;
  return typeof code === 'string' ? code : undefined;
}

function translate(e: unknown, what: string): OrchestratorError {
  if (e instanceof OrchestratorError) return e;
  const status = (e as { statusCode?: unknown }).statusCode;
  const retryable = typeof status !== 'number' || status >= 500 || status === 429 || status === 408;
  return new OrchestratorError(
    'DEPENDENCY_UNAVAILABLE',
    `${what} failed: ${codeOf(e) ?? (typeof status === 'number' ? `HTTP ${status}` : 'no answer')} ${describeError(e)}`,
    { retryable, cause: e },
  );
}
