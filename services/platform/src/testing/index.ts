export { describeQueueTransportContract } from './queue-transport-contract.ts';
export type { QueueTransportContractOptions } from './queue-transport-contract.ts';
export { eventually, makeJob, makeQueuedJob } from './fixtures.ts';
export { describeJobStoreContract } from './job-store-contract.ts';
export { describeBlobStoreContract } from './blob-store-contract.ts';
