export { createRabbitMqTransport } from './rabbitmq-transport.ts';
export type { RabbitMqTransportOptions } from './rabbitmq-transport.ts';
