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

describe('secrets inside text and at any depth', () => {
  it('masks credentials in error messages, stacks and causes, keeping the rest of the error', () => {
    const { lines, logger } = capture();
    const cause = new Error(`connect to ${SECRETS.storage} failed`);
    const err = new Error(`cannot reach ${SECRETS.pg}: ECONNREFUSED`, { cause });
    logger.error({ err }, 'job store unavailable');
    const output = lines();
    expect(output).not.toMatch(/s3cret|c3RvcmFnZS1zM2NyZXQ/);
    const entry = JSON.parse(output) as { err: { message: string; stack: string; type: string } };
    expect(entry.err.type).toBe('Error');
    // pino's error serializer appends the cause's message.
    expect(entry.err.message).toBe(
      'cannot reach postgres://orch:[Redacted]@db.internal:5432/orch: ECONNREFUSED: ' +
        'connect to DefaultEndpointsProtocol=https;AccountName=orch;AccountKey=[Redacted] failed',
    );
    expect(entry.err.stack).toContain('cannot reach postgres://orch:[Redacted]@db.internal');
  });

  it('masks credentials in log messages, format arguments and plain string fields', () => {
    const { lines, logger } = capture();
    logger.warn('retrying %s', 'amqp://guest:rabbit-s3cret@127.0.0.1:5672/orch');
    logger.warn(`using ${SECRETS.servicebus}`);
    logger.info({ target: 'Server=db;User Id=orch;Password=sql-s3cret;Encrypt=true' }, 'connecting');
    logger.info({ header: SECRETS.bearer, sas: 'https://orch.blob.core.windows.net/r?sv=2024&sig=sas-s3cret' }, 'x');
    const output = lines();
    expect(output).not.toMatch(/s3cret/);
    expect(output).toContain('amqp://guest:[Redacted]@127.0.0.1:5672/orch');
    expect(output).toContain('SharedAccessKeyName=x;SharedAccessKey=[Redacted]');
    expect(output).toContain('Password=[Redacted];Encrypt=true');
    expect(output).toContain('Bearer [Redacted]');
    expect(output).toContain('sv=2024&sig=[Redacted]');
  });

  it('redacts secret keys at the top level and several levels down', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        password: 'top-s3cret',
        token: 'tok-s3cret',
        a: { b: { password: 'two-s3cret', c: { apiKey: 'three-s3cret', d: { connectionString: 'four-s3cret' } } } },
        err: { options: { auth: { password: 'err-s3cret' } } },
        req: { raw: { headers: { authorization: 'Basic dXNlcjpzM2NyZXQ=' } } },
      },
      'nested',
    );
    const output = lines();
    expect(output).not.toMatch(/s3cret|dXNlcjpzM2NyZXQ/);
    expect(output).toContain('"password":"[Redacted]"');
  });

  it('leaves text without credentials alone', () => {
    const { lines, logger } = capture();
    const text = 'GET http://127.0.0.1:8000/jobs/abc@def?limit=5 user:me at 10:42 cost=4.5 key=value';
    logger.info({ url: 'https://example.com:443/a@b', note: text }, text);
    const output = lines();
    expect(output).not.toContain('[Redacted]');
    expect(output).toContain('https://example.com:443/a@b');
  });
});
