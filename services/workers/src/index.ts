import { fileURLToPath } from 'node:url';

export { createRunJob, startWorker } from './worker.ts';
export type { WorkerDeps, WorkerOptions } from './worker.ts';
export { createWorkerReplicaSet } from './replicas.ts';
export { executeHandler } from './execute.ts';
export type { ExecuteOptions } from './execute.ts';
export { loadWorkerConfig, workerConfigSchema } from './config.ts';
export type { WorkerConfig } from './config.ts';

/** The batch task runner's entry file: the command a batch backend runs for each task. */
export const TASK_RUNNER_PATH = fileURLToPath(new URL('./task-runner.ts', import.meta.url));
