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
/** Completed tasks are listed from this long before the previous poll (clock skew, list lag). */
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
 * Completion is read with one list request per pool and poll: completed tasks whose state changed
 * since the previous poll (`stateTransitionTime`, minus an overlap), `$select`ed to id and execution
 * info, remembered so a later question about them costs nothing. About ten tasks carry 1,000 jobs,
 * so 1,000 batch jobs cost one job creation, one task collection and a handful of polls.
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
  const submitted = new Map<BatchPool, Set<string>>();
  const completed = new Map<string, BatchTaskState>();
  const lastPoll = new Map<BatchPool, number>();

  function ensureJob(pool: BatchPool): Promise<void> {
    let ready = jobsReady.get(pool);
    if (!ready) {
      ready = client.job
        .add({ id: jobIdOf(pool), poolInfo: { poolId: options.poolIds[pool] } })
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

  return {
    kind: 'azure-batch',

    async submitTasks(pool, tasks) {
      if (tasks.length === 0) return;
      await ensureJob(pool);
      const known = submitted.get(pool) ?? new Set<string>();
      submitted.set(pool, known);
      for (const chunk of collections(tasks.map((t) => toParameter(pool, t)))) {
        let result: BatchServiceModels.TaskAddCollectionResponse;
        try {
          result = await client.task.addCollection(jobIdOf(pool), chunk);
        } catch (e) {
          throw translate(e, `adding ${chunk.length} tasks to Batch job ${jobIdOf(pool)}`);
        }
        const failed = (result.value ?? []).filter((r) => r.status !== 'success' && r.error?.code !== 'TaskExists');
        for (const r of result.value ?? [])
          if (r.status === 'success' || r.error?.code === 'TaskExists') known.add(r.taskId);
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
      const missing = taskIds.filter((id) => !completed.has(id));
      if (missing.length > 0) {
        const since = lastPoll.get(pool);
        const startedAt = now();
        const filter =
          since === undefined
            ? "state eq 'completed'"
            : `state eq 'completed' and stateTransitionTime ge datetime'${new Date(since - POLL_OVERLAP_IN_MS).toISOString()}'`;
        try {
          let page = await client.task.list(jobIdOf(pool), {
            taskListOptions: { filter, select: 'id,state,executionInfo', maxResults: 1000 },
          });
          for (;;) {
            for (const task of page) if (task.id) completed.set(task.id, stateOf(task));
            if (!page.odatanextLink) break;
            page = await client.task.listNext(page.odatanextLink);
          }
        } catch (e) {
          if (codeOf(e) !== 'JobNotFound') throw translate(e, `listing the tasks of Batch job ${jobIdOf(pool)}`);
        }
        lastPoll.set(pool, startedAt);
      }
      const known = submitted.get(pool);
      return new Map(
        taskIds.map((id): [string, BatchTaskState] => [
          id,
          completed.get(id) ?? (known?.has(id) ? { state: 'pending' } : { state: 'unknown' }),
        ]),
      );
    },

    close() {
      return Promise.resolve();
    },
  };
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
