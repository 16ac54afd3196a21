export { createServiceBusTransport } from './service-bus-transport.ts';
export type {
  ServiceBusQueueSettings,
  ServiceBusRetrySettings,
  ServiceBusTransportOptions,
} from './service-bus-transport.ts';
