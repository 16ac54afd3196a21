/**
 * The broker's own ceiling: raw amqplib on a quorum queue (what our RabbitMQ transport declares),
 * publishing with pipelined confirms while a consumer (prefetch 1000) acks each message.
 * Messages/s from the first publish to the last ack.
 */
import amqp from 'amqplib';
import { createRabbitMqSandbox } from '@orch/platform/harness';
import { seconds } from './lib.ts';

export async function rawRabbitMqRate(count: number): Promise<number> {
  const vhost = await createRabbitMqSandbox({ prefix: 'orch-bench-raw' });
  const connection = await amqp.connect(vhost.url);
  try {
    const publisher = await connection.createConfirmChannel();
    const consumer = await connection.createChannel();
    const queue = 'ceiling';
    await publisher.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await consumer.prefetch(1000);
    let acked = 0;
    const allAcked = new Promise<void>((resolve) => {
      void consumer.consume(queue, (message) => {
        if (!message) return;
        consumer.ack(message);
        acked += 1;
        if (acked === count) resolve();
      });
    });
    const body = Buffer.from(JSON.stringify({ jobId: '00000000-0000-0000-0000-000000000000' }));
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const ok = publisher.sendToQueue(queue, body, { persistent: true, contentType: 'application/json' });
      if (!ok) await new Promise((resolve) => publisher.once('drain', resolve));
    }
    await publisher.waitForConfirms();
    await allAcked;
    return count / seconds(started);
  } finally {
    await connection.close();
    await vhost.close();
  }
}
