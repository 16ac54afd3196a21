import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/index.ts';

/** A logger writing JSON lines into a string, as it writes them to stdout in production. */
function capture(): { lines: () => string; logger: ReturnType<typeof createLogger> } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { lines: () => text, logger: createLogger({ service: 'test', level: 'info', destination }) };
}

const SECRETS = {
  pg: 'postgres://orch:pg-s3cret@db.internal:5432/orch',
  storage: 'DefaultEndpointsProtocol=https;AccountName=orch;AccountKey=c3RvcmFnZS1zM2NyZXQ=',
  servicebus: 'Endpoint=sb://orch.servicebus.windows.net/;SharedAccessKeyName=x;SharedAccessKey=sb-s3cret',
  bearer: 'Bearer orch_api-key-s3cret',
  apiKeys: 'acme:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
};

describe('log redaction', () => {
  it('never writes connection strings, passwords, API keys or Authorization headers', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        config: {
          DATABASE_URL: SECRETS.pg,
          AZURE_STORAGE_CONNECTION_STRING: SECRETS.storage,
          SERVICEBUS_CONNECTION_STRING: SECRETS.servicebus,
          API_KEYS: SECRETS.apiKeys,
          RABBITMQ_URL: 'amqp://guest:rabbit-s3cret@127.0.0.1:5672',
          PORT: 8000,
        },
      },
      'config loaded',
    );
    logger.info({ req: { method: 'GET', url: '/jobs', headers: { authorization: SECRETS.bearer } } }, 'incoming');
    logger.info({ options: { connectionString: SECRETS.servicebus, password: 'pw-s3cret', apiKey: 'k-s3cret' } }, 'x');
    const output = lines();
    expect(output).not.toMatch(/s3cret/);
    // The rest of each entry is still there, and says what was hidden.
    expect(output).toContain('"PORT":8000');
    expect(output).toContain('"url":"/jobs"');
    expect(output).toContain('[Redacted]');
  });
});
