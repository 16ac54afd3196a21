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

/** Fields whose values are secrets whatever they look like, at any depth (any letter case). */
const SECRET_FIELD =
  /^(?:password|passwd|pwd|secret|token|apiKeys?|accountKey|connectionString|authorization|cookie|sharedAccessKey)$/i;
/** Configuration keys holding secrets: `*_KEY`, `*_SECRET`, …, and the URLs that carry credentials. */
const SECRET_CONFIG_KEY =
  /(?:_KEY|_KEYS|_SECRET|_PASSWORD|_TOKEN|_CONNECTION_STRING)$|^(?:API_KEYS|DATABASE_URL|RABBITMQ_URL|RABBITMQ_MANAGEMENT_URL)$/;
/** Deeper than this, a logged object is left as it is (its text is still scrubbed). */
const MAX_REDACT_DEPTH = 8;

/**
 * Paths pino redacts on serialized values: the Authorization and Cookie headers of the request
 * Fastify logs (a live request object, which {@link redactSecretFields} does not walk).
 */
const REDACTED_PATHS: readonly string[] = ['req.headers.authorization', 'req.headers.cookie'];

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

/**
 * `value` with every secret field (by name, at any depth of plain objects and arrays) replaced by
 * `[Redacted]`. Copy on write: the caller's objects are never changed, and an entry without
 * secrets is returned as it is. Errors and other class instances are left to their serializers
 * (and to {@link scrubSecrets}).
 */
function redactSecretFields<T>(value: T, depth = 0): T {
  if (depth > MAX_REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const redacted = redactSecretFields(item, depth + 1);
      if (redacted !== item) (copy ??= [...(value as unknown[])])[i] = redacted;
    });
    return (copy ?? value) as T;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted =
      item !== undefined && item !== null && (SECRET_FIELD.test(key) || SECRET_CONFIG_KEY.test(key))
        ? MASK
        : redactSecretFields(item, depth + 1);
    if (redacted !== item) (copy ??= { ...value })[key] = redacted;
  }
  return (copy ?? value) as T;
}

const MASK = '[Redacted]';

/**
 * Credentials embedded in text, each with the part to keep in group 1:
 * - the password of a URL (`postgres://user:pw@host`, `amqp://guest:guest@…`),
 * - secret fields of connection strings (`AccountKey=`, `SharedAccessKey=`, `Password=`, `Pwd=`,
 *   `SharedAccessSignature=`, `sig=` of a SAS URL), up to the next `;`, `&`, quote or space,
 * - bearer tokens (`Authorization: Bearer orch_…`).
 * Text as it appears in a JSON line: a value ends at a quote or a backslash (an escape).
 */
const SECRET_PATTERNS: readonly RegExp[] = [
  /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"'\\]*:)[^\s/@"'\\]+(?=@)/gi,
  /((?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|sig)=)[^;&\s"'\\]+/gi,
  /(Bearer\s+)[^\s"'\\,;]+/gi,
];

/** `text` with every credential it embeds (see `SECRET_PATTERNS`) replaced by `[Redacted]`. */
function scrubSecrets(text: string): string {
  let scrubbed = text;
  for (const pattern of SECRET_PATTERNS) scrubbed = scrubbed.replace(pattern, `$1${MASK}`);
  return scrubbed;
}

/**
 * JSON logs to stdout (pretty only in a terminal), with secrets redacted twice over: by field name
 * at any depth of the logged object, and by shape in the finished line, so a password inside an
 * error's message, stack or cause, a log message or any nested string is masked wherever it sits.
 */
export function createLogger({ service, level, format = 'auto', destination }: LoggerOptions): Logger {
  const pretty = !destination && (format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true));
  const options = {
    level,
    base: { service },
    redact: [...REDACTED_PATHS],
    formatters: { log: (entry: Record<string, unknown>) => redactSecretFields(entry) },
    // Every line passes here on its way out (to the pretty transport too), errors already serialized.
    hooks: { streamWrite: scrubSecrets },
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
