export { createMemoryTransport } from './memory-transport.ts';
export type { MemoryQueueOptions, MemoryTransportOptions } from './memory-transport.ts';
