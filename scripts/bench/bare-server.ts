/**
 * The HTTP ceiling for the ingest scenario: fastify with the API's own request validation
 * (@orch/core's submission schemas) and nothing behind it — no job store, no queue.
 */
import { randomUUID } from 'node:crypto';
import { createHandlerRegistry, parseBatchSubmission, parseSubmission } from '@orch/core';
import Fastify from 'fastify';

const knownTypes = new Set(createHandlerRegistry().keys());
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

app.post('/submit-job', (request, reply) => {
  parseSubmission(request.body ?? {}, knownTypes);
  void reply.status(202).send({ job_id: randomUUID(), status: 'submitted' });
});
app.post('/jobs/batch', (request, reply) => {
  const jobs = parseBatchSubmission(request.body, knownTypes);
  void reply.status(202).send({ job_ids: jobs.map(() => randomUUID()), status: 'submitted' });
});
app.get('/readyz', () => ({ status: 'ready' }));

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
