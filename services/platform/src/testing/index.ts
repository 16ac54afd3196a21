export { describeQueueTransportContract } from './queue-transport-contract.ts';
export type { QueueTransportContractOptions } from './queue-transport-contract.ts';
export { eventually, makeJob, makeQueuedJob, withOverrides } from './fixtures.ts';
export { describeJobStoreContract } from './job-store-contract.ts';
export { describeBlobStoreContract } from './blob-store-contract.ts';
export { freePort, removeDir, startSystem } from './processes.ts';
export type { RunningSystem } from './processes.ts';
export {
  expectVerifiedResult,
  getJob,
  mixedJobs,
  ONE_JOB_PER_ROUTE,
  postJson,
  submitAll,
  waitTerminal,
} from './jobs-api.ts';
export type { JobView } from './jobs-api.ts';
export { parsePrometheusText, sampleValue, sumSamples } from './prometheus.ts';
export type { PrometheusSample } from './prometheus.ts';
export { createPgSandbox, createRabbitMqSandbox, isListening } from './sandboxes.ts';
export type { RabbitMqSandboxOptions, Sandbox } from './sandboxes.ts';
