export { startAzurite } from './azurite.ts';
export type { RunningAzurite, StartAzuriteOptions } from './azurite.ts';
export { startServiceBusTestServer } from './service-bus-server.ts';
export type { RunningServiceBusTestServer, StartServiceBusTestServerOptions } from './service-bus-server.ts';
export { startBatchTestServer } from './batch-server.ts';
export type {
  RecordedBatchRequest,
  RunningBatchTestServer,
  StartBatchTestServerOptions,
  TestBatchTask,
} from './batch-server.ts';
