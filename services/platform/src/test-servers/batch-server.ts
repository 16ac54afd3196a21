import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Azure Batch data plane, for tests of the Batch adapter with the real
 * `@azure/batch` SDK: the REST paths the adapter uses (create job, add task collection, list tasks
 * with `$filter`/`$select` and `odata.nextLink` paging), answering with the service's JSON and
 * error shapes, enforcing its limits (100 tasks and 1 MB per collection), recording every request,
 * and moving tasks from `active` to `running` to `completed` as Batch does: when the test says so
 * (`start`, `complete`), or one step per poll (`advanceOnList`).
 */
export interface RecordedBatchRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  bytes: number;
}

export interface TestBatchTask {
  id: string;
  jobId: string;
  commandLine: string;
  environment: Record<string, string>;
  containerImage?: string;
  state: 'active' | 'running' | 'completed';
  stateTransitionTime: string;
  startTime?: string;
  exitCode?: number;
  failure?: { code: string; message: string };
}

export interface RunningBatchTestServer {
  url: string;
  requests: RecordedBatchRequest[];
  jobs: Map<string, TestBatchJob>;
  tasks: Map<string, TestBatchTask>;
  /** Starts an active task on a node: it becomes `running`. */
  start(taskId: string): void;
  /** Completes a task with an exit code (and a failure, as Batch reports one). */
  complete(taskId: string, exitCode: number, failure?: { code: string; message: string }): void;
  close(): Promise<void>;
}

interface TestBatchJob {
  poolId: string;
  /** As the job was created with (Batch's own default, when absent, is `noaction`). */
  onAllTasksComplete?: string;
}

export interface StartBatchTestServerOptions {
  /** Tasks per page of a list. @default 1000 */
  pageSize?: number;
  /**
   * Each task list of a job (its first page) first moves every task of the job one step: `active`
   * to `running`, `running` to `completed` with exit code 0. @default false
   */
  advanceOnList?: boolean;
}

const MAX_TASKS = 100;
const MAX_BODY_BYTES = 1024 * 1024;

export async function startBatchTestServer(options: StartBatchTestServerOptions = {}): Promise<RunningBatchTestServer> {
  const pageSize = options.pageSize ?? 1000;
  const requests: RecordedBatchRequest[] = [];
  const jobs = new Map<string, TestBatchJob>();
  const tasks = new Map<string, TestBatchTask>();
  let base = '';

  const send = (res: ServerResponse, status: number, body?: unknown): void => {
    res.writeHead(status, {
      'content-type': 'application/json;odata=minimalmetadata',
      'request-id': crypto.randomUUID(),
    });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string): void =>
    send(res, status, {
      'odata.metadata': `${base}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element`,
      code,
      message: { lang: 'en-US', value: message },
    });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', base);
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      fail(res, 400, 'InvalidRequestBody', 'The request body is not valid JSON.');
      return;
    }
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      bytes: raw.length,
    });
    if (!url.searchParams.get('api-version')) {
      fail(res, 400, 'MissingRequiredQueryParameter', 'api-version is required.');
      return;
    }
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (req.method === 'POST' && parts.length === 1 && parts[0] === 'jobs') {
      const job = body as { id?: string; poolInfo?: { poolId?: string }; onAllTasksComplete?: string };
      if (!job.id || !job.poolInfo?.poolId)
        return fail(res, 400, 'MissingRequiredProperty', 'id and poolInfo.poolId are required.');
      if (jobs.has(job.id)) return fail(res, 409, 'JobExists', 'The specified job already exists.');
      jobs.set(job.id, {
        poolId: job.poolInfo.poolId,
        ...(job.onAllTasksComplete !== undefined && { onAllTasksComplete: job.onAllTasksComplete }),
      });
      return send(res, 201);
    }
    const jobId = parts[1] ?? '';
    if (parts[0] !== 'jobs' || !jobId) return fail(res, 404, 'InvalidUri', 'No such resource.');
    if (!jobs.has(jobId)) return fail(res, 404, 'JobNotFound', 'The specified job does not exist.');

    if (req.method === 'POST' && parts[2] === 'addtaskcollection') {
      if (raw.length >= MAX_BODY_BYTES) return fail(res, 413, 'RequestBodyTooLarge', 'The request body is too large.');
      const value = (body as { value?: unknown[] }).value ?? [];
      if (value.length > MAX_TASKS) {
        return fail(res, 400, 'TooManyRequestsInCollection', `At most ${MAX_TASKS} tasks per collection.`);
      }
      const results = value.map((t) => {
        const task = t as {
          id: string;
          commandLine: string;
          environmentSettings?: { name: string; value: string }[];
          containerSettings?: { imageName: string };
        };
        if (tasks.has(task.id)) {
          return {
            status: 'clientError',
            taskId: task.id,
            error: { code: 'TaskExists', message: { lang: 'en-US', value: 'The specified task already exists.' } },
          };
        }
        tasks.set(task.id, {
          id: task.id,
          jobId,
          commandLine: task.commandLine,
          environment: Object.fromEntries((task.environmentSettings ?? []).map((e) => [e.name, e.value])),
          ...(task.containerSettings && { containerImage: task.containerSettings.imageName }),
          state: 'active',
          stateTransitionTime: new Date().toISOString(),
        });
        return { status: 'success', taskId: task.id, eTag: '0x1', lastModified: new Date().toUTCString() };
      });
      return send(res, 200, { value: results });
    }

    if (req.method === 'GET' && parts[2] === 'tasks' && parts.length === 3) {
      const skip = Number(url.searchParams.get('skip') ?? 0);
      if (options.advanceOnList && skip === 0) {
        for (const task of tasks.values()) {
          if (task.jobId !== jobId) continue;
          if (task.state === 'active') start(task);
          else if (task.state === 'running') complete(task, 0);
        }
      }
      // The filters the adapter sends: `state eq` terms joined by `or`, and a transition time bound.
      const filter = url.searchParams.get('$filter') ?? '';
      const states = [...filter.matchAll(/\bstate eq '(\w+)'/g)].map((m) => m[1]);
      const since = /stateTransitionTime ge datetime'([^']+)'/.exec(filter)?.[1];
      const select = url.searchParams.get('$select')?.split(',');
      const matching = [...tasks.values()].filter(
        (t) =>
          t.jobId === jobId &&
          (states.length === 0 || states.includes(t.state)) &&
          (since === undefined || Date.parse(t.stateTransitionTime) >= Date.parse(since)),
      );
      const page = matching.slice(skip, skip + pageSize).map((t) => {
        const view: Record<string, unknown> = {
          id: t.id,
          state: t.state,
          stateTransitionTime: t.stateTransitionTime,
          commandLine: t.commandLine,
          ...(t.state === 'running' && { executionInfo: { startTime: t.startTime, retryCount: 0, requeueCount: 0 } }),
          ...(t.state === 'completed' && {
            executionInfo: {
              startTime: t.startTime,
              endTime: t.stateTransitionTime,
              exitCode: t.exitCode,
              retryCount: 0,
              requeueCount: 0,
              result: t.failure || t.exitCode !== 0 ? 'failure' : 'success',
              ...(t.failure && { failureInfo: { category: 'usererror', ...t.failure } }),
            },
          }),
        };
        return select ? Object.fromEntries(Object.entries(view).filter(([k]) => select.includes(k))) : view;
      });
      const next = new URL(url);
      next.searchParams.set('skip', String(skip + pageSize));
      return send(res, 200, {
        'odata.metadata': `${base}/$metadata#tasks`,
        value: page,
        ...(skip + pageSize < matching.length && { 'odata.nextLink': next.toString() }),
      });
    }
    fail(res, 404, 'InvalidUri', 'No such resource.');
  }

  const taskOf = (taskId: string): TestBatchTask => {
    const task = tasks.get(taskId);
    if (!task) throw new Error(`no task ${taskId}`);
    return task;
  };
  function start(task: TestBatchTask): void {
    if (task.state !== 'active') throw new Error(`task ${task.id} is ${task.state}, not active`);
    const at = new Date().toISOString();
    Object.assign(task, { state: 'running', stateTransitionTime: at, startTime: at });
  }
  function complete(task: TestBatchTask, exitCode: number, failure?: { code: string; message: string }): void {
    Object.assign(task, { state: 'completed', exitCode, stateTransitionTime: new Date().toISOString() });
    if (failure) task.failure = failure;
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => fail(res, 500, 'InternalError', String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    jobs,
    tasks,
    start: (taskId) => start(taskOf(taskId)),
    complete: (taskId, exitCode, failure) => complete(taskOf(taskId), exitCode, failure),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
