import type { TokenCredential } from '@azure/identity';
import type { ServiceClientCredentials, WebResourceLike } from '@azure/ms-rest-js';
import { TASK_SPEC_ENV } from '@orch/core';
import type { BatchBackend, BatchTaskSpec } from '@orch/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchTokenCredentials, createAzureBatchBackend } from '../../src/azure-batch/index.ts';
import { createLogger } from '../../src/runtime/index.ts';
import { startBatchTestServer } from '../../src/test-servers/index.ts';
import type { RunningBatchTestServer, StartBatchTestServerOptions } from '../../src/test-servers/index.ts';

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
const plainBackend = (
  accountUrl: string,
  extra: { sdkRetries?: boolean; credentials?: ServiceClientCredentials } = {},
): Promise<BatchBackend> =>
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
const lists = () => server.requests.filter((r) => r.method === 'GET');

/** Replaces the server (and the backend) with one started with `serverOptions`. */
async function restartServer(serverOptions: StartBatchTestServerOptions): Promise<void> {
  await server.close();
  server = await startBatchTestServer(serverOptions);
  backend = await plainBackend(server.url);
}

/** An Entra ID credential that hands out a fixed token and records the scopes it was asked for. */
function recordingCredential(token: string | null): { credential: TokenCredential; scopes: unknown[] } {
  const scopes: unknown[] = [];
  const credential: TokenCredential = {
    getToken(scope) {
      scopes.push(scope);
      return Promise.resolve(token === null ? null : { token, expiresOnTimestamp: Date.now() + 3_600_000 });
    },
  };
  return { credential, scopes };
}

describe('Azure Batch backend (real @azure/batch SDK against the local Batch server)', () => {
  it('creates the pool’s Batch job once, then adds tasks that run the task runner in the worker image', async () => {
    await backend.submitTasks('batch', [task('t-1'), task('t-2')]);
    await backend.submitTasks('batch', [task('t-3')]);
    await backend.submitTasks('ml', [task('t-4')]);

    // `noaction`: a job whose tasks are all complete must stay open for the next ones.
    expect([...server.jobs]).toEqual([
      ['orch-batch', { poolId: 'batch-pool', onAllTasksComplete: 'noaction' }],
      ['orch-ml', { poolId: 'ml-pool', onAllTasksComplete: 'noaction' }],
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

  it('reports a task as running once Batch starts it, then completed', async () => {
    await backend.submitTasks('batch', [task('slow', 1)]);
    expect((await backend.getTaskStates('batch', ['slow'])).get('slow')).toEqual({ state: 'pending' });
    server.start('slow');
    expect((await backend.getTaskStates('batch', ['slow'])).get('slow')).toEqual({ state: 'running' });
    server.complete('slow', 0);
    expect((await backend.getTaskStates('batch', ['slow'])).get('slow')).toEqual({ state: 'completed', exitCode: 0 });
  });

  it('given tasks that Batch moves one step per poll, observes each running before it completes', async () => {
    await restartServer({ advanceOnList: true });
    await backend.submitTasks('ml', [task('step-1', 1), task('step-2', 1)]);
    const seen: string[][] = [];
    for (let poll = 0; poll < 5 && !seen.at(-1)?.every((s) => s === 'completed'); poll++) {
      const states = await backend.getTaskStates('ml', ['step-1', 'step-2']);
      seen.push([...states.values()].map((s) => s.state));
    }
    expect(seen).toEqual([
      ['running', 'running'],
      ['completed', 'completed'],
    ]);
  });

  it('signs every request with an Entra ID token for the Batch scope', async () => {
    const { credential, scopes } = recordingCredential('entra-token');
    const signed = await plainBackend(server.url, { credentials: new BatchTokenCredentials(credential) });
    await signed.submitTasks('batch', [task('signed', 1)]);
    await signed.getTaskStates('batch', ['signed']);

    expect(server.requests.length).toBe(3); // job, task collection, list
    expect(server.requests.map((r) => r.headers.authorization)).toEqual(Array(3).fill('Bearer entra-token'));
    expect(scopes).toEqual(Array(3).fill('https://batch.core.windows.net//.default'));
  });

  it('given a credential that yields no token, fails with a retryable DEPENDENCY_UNAVAILABLE and sends nothing', async () => {
    const { credential } = recordingCredential(null);
    const unsigned = await plainBackend(server.url, {
      credentials: new BatchTokenCredentials(credential),
      sdkRetries: false,
    });
    await expect(unsigned.submitTasks('batch', [task('unsigned', 1)])).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      retryable: true,
    });
    expect(server.requests).toEqual([]);
  });

  it('keeps answering a completion while it is asked about, and forgets it once a poll no longer asks', async () => {
    const read = async (ids: string[]) => Object.fromEntries(await backend.getTaskStates('batch', ids));
    await backend.submitTasks('batch', [task('a', 1), task('b', 1), task('c', 1)]);
    server.complete('a', 0);
    server.complete('b', 0);
    const completed = { state: 'completed', exitCode: 0 };
    const pending = { state: 'pending' };
    expect(await read(['a', 'b', 'c'])).toEqual({ a: completed, b: completed, c: pending });
    // The submitter could not finish `a` and `b` yet: it asks again and gets the same answer.
    expect(await read(['a', 'b', 'c'])).toEqual({ a: completed, b: completed, c: pending });
    // It finished `a`: the next poll leaves it out, and the backend lets it go.
    await read(['b', 'c']);
    expect(await read(['a', 'b', 'c'])).toEqual({ a: { state: 'unknown' }, b: completed, c: pending });
  });

  it('given a pool job full of old completed tasks, the first poll lists only what changed since its submissions', async () => {
    await restartServer({ pageSize: 3 });
    // A job left by earlier runs (never cleaned up): 30 tasks that completed yesterday.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    server.jobs.set('orch-batch', { poolId: 'batch-pool', onAllTasksComplete: 'noaction' });
    for (let i = 0; i < 30; i++) {
      server.tasks.set(`old-${i}`, {
        id: `old-${i}`,
        jobId: 'orch-batch',
        commandLine: 'run',
        environment: {},
        state: 'completed',
        stateTransitionTime: yesterday,
        exitCode: 0,
      });
    }
    const submittedAt = Date.now();
    await backend.submitTasks('batch', [task('new-1', 1), task('new-2', 1)]);
    server.complete('new-1', 0);
    server.complete('new-2', 0);

    const states = await backend.getTaskStates('batch', ['new-1', 'new-2', 'old-0']);
    expect([...states.values()].map((s) => s.state)).toEqual(['completed', 'completed', 'unknown']);
    expect(lists()).toHaveLength(1); // one page: the 30 old tasks are not listed
    const since = /datetime'([^']+)'/.exec(lists()[0]?.query.$filter ?? '')?.[1];
    expect(Date.parse(since ?? '')).toBeGreaterThanOrEqual(submittedAt - 60_000);
  });

  it('lists only changes since the previous poll, and follows every page', async () => {
    await restartServer({ pageSize: 3 });
    const ids = Array.from({ length: 8 }, (_, i) => `p-${i}`);
    await backend.submitTasks(
      'batch',
      ids.map((id) => task(id, 1)),
    );
    for (const id of ids) server.complete(id, 0);
    const states = await backend.getTaskStates('batch', ids);
    expect([...states.values()].every((s) => s.state === 'completed')).toBe(true);
    const gets = lists();
    expect(gets).toHaveLength(3); // 8 tasks, 3 per page
    expect(gets[0]?.query.$filter).toMatch(
      /^\(state eq 'running' or state eq 'completed'\) and stateTransitionTime ge datetime'.+'$/,
    );
    expect(gets[0]?.query.$select).toBe('id,state,executionInfo');

    await backend.submitTasks('batch', [task('later', 1)]);
    server.complete('later', 0);
    await backend.getTaskStates('batch', ['later']);
    expect(lists().at(-1)?.query.$filter).toMatch(
      /^\(state eq 'running' or state eq 'completed'\) and stateTransitionTime ge datetime'.+'$/,
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
