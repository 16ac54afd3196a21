import type { ServiceClientCredentials, WebResourceLike } from '@azure/ms-rest-js';
import { TASK_SPEC_ENV } from '@orch/core';
import type { BatchBackend, BatchTaskSpec } from '@orch/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAzureBatchBackend } from '../../src/azure-batch/index.ts';
import { createLogger } from '../../src/runtime/index.ts';
import { startBatchTestServer } from '../../src/test-servers/index.ts';
import type { RunningBatchTestServer } from '../../src/test-servers/index.ts';

/** Signs like the Entra ID adapter does, with a fixed token the server can check. */
const credentials: ServiceClientCredentials = {
  signRequest(webResource: WebResourceLike) {
    webResource.headers.set('authorization', 'Bearer test-token');
    return Promise.resolve(webResource);
  },
};

const logger = createLogger({ service: 'test', level: 'silent', format: 'json' });

let server: RunningBatchTestServer;
let backend: BatchBackend;
beforeEach(async () => {
  server = await startBatchTestServer();
  backend = await createAzureBatchBackend({
    accountUrl: server.url,
    poolIds: { ml: 'ml-pool', batch: 'batch-pool' },
    jobIdPrefix: 'orch',
    taskCommandLine: 'node services/workers/src/task-runner.ts',
    containerImage: 'orchacr.azurecr.io/orchestrator/actor-worker:abc',
    taskEnvironment: { LOG_LEVEL: 'info', AZURE_CLIENT_ID: 'task-identity' },
    logger,
    credentials,
  });
});
afterEach(async () => {
  await backend.close();
  await server.close();
});

/** A task of `jobs` jobs, as the batch submitter groups them (100 per task). */
function task(id: string, jobs = 100, data: Record<string, unknown> = {}): BatchTaskSpec {
  return {
    id,
    jobs: Array.from({ length: jobs }, (_, i) => ({
      jobId: `${id}-job-${i}`,
      type: 'synthetic',
      rows: 1000,
      estimatedRuntimeSec: 10,
      data,
      attempt: 1,
    })),
  };
}

/** A backend with no image and no extra environment. */
const plainBackend = (accountUrl: string, extra: { sdkRetries?: boolean } = {}): Promise<BatchBackend> =>
  createAzureBatchBackend({
    accountUrl,
    poolIds: { ml: 'ml-pool', batch: 'batch-pool' },
    jobIdPrefix: 'orch',
    taskCommandLine: 'run',
    taskEnvironment: {},
    logger,
    credentials,
    ...extra,
  });

const addCollections = () => server.requests.filter((r) => r.path.endsWith('/addtaskcollection'));

describe('Azure Batch backend (real @azure/batch SDK against the local Batch server)', () => {
  it('creates the pool’s Batch job once, then adds tasks that run the task runner in the worker image', async () => {
    await backend.submitTasks('batch', [task('t-1'), task('t-2')]);
    await backend.submitTasks('batch', [task('t-3')]);
    await backend.submitTasks('ml', [task('t-4')]);

    expect([...server.jobs]).toEqual([
      ['orch-batch', { poolId: 'batch-pool' }],
      ['orch-ml', { poolId: 'ml-pool' }],
    ]);
    expect(server.requests.filter((r) => r.method === 'POST' && r.path === '/jobs')).toHaveLength(2);
    const stored = server.tasks.get('t-1')!;
    expect(stored).toMatchObject({
      jobId: 'orch-batch',
      commandLine: 'node services/workers/src/task-runner.ts',
      containerImage: 'orchacr.azurecr.io/orchestrator/actor-worker:abc',
    });
    expect(stored.environment).toMatchObject({ LOG_LEVEL: 'info', AZURE_CLIENT_ID: 'task-identity' });
    expect((JSON.parse(stored.environment[TASK_SPEC_ENV]!) as BatchTaskSpec).jobs).toHaveLength(100);
    expect(server.requests.every((r) => r.headers.authorization === 'Bearer test-token')).toBe(true);
  });

  it('given 250 tasks, adds them in collections of at most 100, each under 1 MB', async () => {
    await backend.submitTasks(
      'batch',
      Array.from({ length: 250 }, (_, i) => task(`many-${i}`, 1)),
    );
    expect(addCollections().map((r) => (r.body as { value: unknown[] }).value.length)).toEqual([100, 100, 50]);
    expect(server.tasks.size).toBe(250);
  });

  it('given big tasks, splits collections by size so each request stays under 1 MB', async () => {
    const big = { blob: 'x'.repeat(60_000) }; // ~60 KB of data per job, one job per task
    await backend.submitTasks(
      'ml',
      Array.from({ length: 40 }, (_, i) => task(`big-${i}`, 1, big)),
    );
    const requests = addCollections();
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests) expect(request.bytes).toBeLessThan(1024 * 1024);
    expect(server.tasks.size).toBe(40);
  });

  it('reports pending tasks, then each completion with its exit code, a failure with its reason', async () => {
    await backend.submitTasks('batch', [task('ok'), task('bad'), task('crash')]);
    expect(await backend.getTaskStates('batch', ['ok', 'bad', 'crash', 'never-submitted'])).toEqual(
      new Map([
        ['ok', { state: 'pending' }],
        ['bad', { state: 'pending' }],
        ['crash', { state: 'pending' }],
        ['never-submitted', { state: 'unknown' }],
      ]),
    );
    server.complete('ok', 0);
    server.complete('bad', 3);
    server.complete('crash', -1, { code: 'ContainerPullFailed', message: 'image not found' });
    const states = await backend.getTaskStates('batch', ['ok', 'bad', 'crash']);
    expect(states.get('ok')).toEqual({ state: 'completed', exitCode: 0 });
    expect(states.get('bad')).toEqual({ state: 'completed', exitCode: 3, failure: 'the task exited with code 3' });
    expect(states.get('crash')).toEqual({
      state: 'completed',
      exitCode: -1,
      failure: 'ContainerPullFailed: image not found',
    });
    // Known completions are answered from memory: no further list request.
    const lists = server.requests.filter((r) => r.method === 'GET').length;
    await backend.getTaskStates('batch', ['ok', 'bad']);
    expect(server.requests.filter((r) => r.method === 'GET').length).toBe(lists);
  });

  it('lists only completions since the previous poll, and follows every page', async () => {
    await server.close();
    server = await startBatchTestServer({ pageSize: 3 });
    backend = await plainBackend(server.url);
    const ids = Array.from({ length: 8 }, (_, i) => `p-${i}`);
    await backend.submitTasks(
      'batch',
      ids.map((id) => task(id, 1)),
    );
    for (const id of ids) server.complete(id, 0);
    const states = await backend.getTaskStates('batch', ids);
    expect([...states.values()].every((s) => s.state === 'completed')).toBe(true);
    const gets = server.requests.filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(3); // 8 tasks, 3 per page
    expect(gets[0]?.query.$filter).toBe("state eq 'completed'");
    expect(gets[0]?.query.$select).toBe('id,state,executionInfo');

    await backend.submitTasks('batch', [task('later', 1)]);
    server.complete('later', 0);
    await backend.getTaskStates('batch', ['later']);
    expect(server.requests.at(-1)?.query.$filter).toMatch(
      /^state eq 'completed' and stateTransitionTime ge datetime'.+'$/,
    );
  });

  it('given the same task again (a retried submission), accepts it as already there', async () => {
    await backend.submitTasks('batch', [task('dup', 1)]);
    await expect(backend.submitTasks('batch', [task('dup', 1), task('new', 1)])).resolves.toBeUndefined();
    expect(server.tasks.size).toBe(2);
  });

  it('costs at most 11 Batch REST calls per 1,000 batch jobs (10 tasks of 100), submission and completion included', async () => {
    const tasks = Array.from({ length: 10 }, (_, i) => task(`k-${i}`, 100));
    await backend.submitTasks('batch', tasks);
    for (const t of tasks) server.complete(t.id, 0);
    const states = await backend.getTaskStates(
      'batch',
      tasks.map((t) => t.id),
    );
    expect([...states.values()].filter((s) => s.state === 'completed')).toHaveLength(10);
    // job creation + one task collection + one list of completions
    expect(server.requests.length).toBeLessThanOrEqual(11);
    expect(server.requests.length).toBe(3);
  });

  it('given an unreachable account, fails with a retryable DEPENDENCY_UNAVAILABLE', async () => {
    const url = server.url;
    await server.close();
    const offline = await plainBackend(url, { sdkRetries: false });
    await expect(offline.submitTasks('batch', [task('x', 1)])).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: true,
    });
    server = await startBatchTestServer();
  });
});
