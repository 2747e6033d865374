import pino, { type DestinationStream, type Level, type Logger } from 'pino';

/**
 * Log paths whose values are replaced by `[REDACTED]`. The app owns redaction (DESIGN §2): libraries
 * never log secrets, and this list is the second line of defence for anything that slips through —
 * a config object, an environment dump, request headers.
 */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  '*.password',
  '*.*.password',
  'connectionString',
  '*.connectionString',
  'databaseUrl',
  '*.databaseUrl',
  'DATABASE_URL',
  '*.DATABASE_URL',
  'DB_PASS',
  '*.DB_PASS',
  'PGPASSWORD',
  '*.PGPASSWORD',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
];

/** The levels `LOG_LEVEL` accepts. */
export const LOG_LEVELS: readonly (Level | 'silent')[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface CreateLoggerOptions {
  /** Default `info`. */
  level?: Level | 'silent';
  /** Where JSON lines go. Default: stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/** The app's root pino logger, with {@link REDACTED_PATHS} redacted in it and every child. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      name: 'accountdb-api',
      level: options.level ?? 'info',
      redact: { paths: [...REDACTED_PATHS], censor: '[REDACTED]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
