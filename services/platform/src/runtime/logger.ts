import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level: string;
  /** Pretty, coloured lines instead of JSON. @default true when stdout is a terminal */
  pretty?: boolean;
}

/** JSON logs to stdout (pretty only in a terminal), with secrets redacted. */
export function createLogger({ service, level, pretty = process.stdout.isTTY === true }: LoggerOptions): Logger {
  return pino({
    level,
    base: { service },
    redact: ['*.connectionString', '*.password', '*.accountKey', 'req.headers.authorization', 'config.*_KEY'],
    ...(pretty && { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } }),
  });
}
