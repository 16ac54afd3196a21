/**
 * The parts of the test support that scripts (the benchmark) use outside vitest: starting systems
 * as processes, free ports, and private RabbitMQ virtual hosts and PostgreSQL databases.
 */
export { freePort, removeDir, startSystem } from './processes.ts';
export type { RunningSystem } from './processes.ts';
export { createPgSandbox, createRabbitMqSandbox, isListening } from './sandboxes.ts';
export type { RabbitMqSandboxOptions, Sandbox } from './sandboxes.ts';
