import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level: string;
  /** `pretty`: coloured lines instead of JSON; `auto`: pretty when stdout is a terminal. @default auto */
  format?: 'auto' | 'json' | 'pretty';
  /** Where JSON lines go. @default stdout */
  destination?: DestinationStream;
}

/**
 * Paths whose values never reach the logs: connection strings, passwords, keys and the
 * Authorization header, wherever they sit one level down (`{ config: {...} }`, `{ options: {...} }`).
 */
export const REDACTED_PATHS: readonly string[] = [
  '*.connectionString',
  '*.password',
  '*.accountKey',
  '*.apiKey',
  '*.apiKeys',
  '*.token',
  '*.DATABASE_URL',
  '*.RABBITMQ_URL',
  '*.RABBITMQ_MANAGEMENT_URL',
  '*.SERVICEBUS_CONNECTION_STRING',
  '*.AZURE_STORAGE_CONNECTION_STRING',
  '*.API_KEYS',
  '*.headers.authorization',
  '*.headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'config.*_KEY',
];

/** JSON logs to stdout (pretty only in a terminal), with secrets redacted. */
export function createLogger({ service, level, format = 'auto', destination }: LoggerOptions): Logger {
  const pretty = !destination && (format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true));
  const options = {
    level,
    base: { service },
    redact: [...REDACTED_PATHS],
    ...(pretty && {
      transport: {
        target: 'pino-pretty',
        options: {
          translateTime: 'SYS:HH:MM:ss.l',
          messageFormat: '[{service}] {msg}',
          ignore: 'pid,hostname,service',
        },
      },
    }),
  };
  return destination ? pino(options, destination) : pino(options);
}
