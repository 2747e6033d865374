import { ConfigError, type ConfigProblem } from './errors.js';
import type { Logger } from './logger.js';
import { checkTlsSettings, SYSTEM_ROOTS } from './tls.js';

/** libpq `sslmode`. `prefer` (the default, like libpq) tries TLS and falls back to plain TCP. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
/** libpq `target_session_attrs`: which server of a multi-host list a connection may use. */
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const TARGET_ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'];

/** One server address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * A complete, validated pool configuration. Build one with {@link loadConfig} (environment) or
 * {@link resolvePoolConfig} (code). `password` is non-enumerable, so it never shows in logs or `JSON.stringify`.
 */
export interface PoolConfig {
  /** Servers to try, in order. Default `[{ host: 'localhost', port: 5432 }]`. */
  readonly hosts: readonly HostPort[];
  /** Database name. Default: the user name (as libpq does). */
  readonly database: string;
  /** Login role. Default `postgres`. */
  readonly user: string;
  /** Password (non-enumerable). */
  readonly password?: string;
  /** Default `prefer`; `verify-full` when `sslrootcert` is `system` (libpq 16). */
  readonly sslmode: SslMode;
  /**
   * libpq `sslrootcert`: a PEM file of the CA certificates that may sign the server's certificate, or
   * `system` for Node's default CA store (then `sslmode` must be `verify-full`). With a file, `prefer` and
   * `require` verify the chain as `verify-ca` does. Unset: `verify-ca`/`verify-full` use Node's default
   * CA store. Stored as an absolute path; checked at load, read at each connect.
   */
  readonly sslrootcert?: string;
  /** libpq `sslcert`: PEM client certificate (may include intermediates) sent to the server. Needs `sslkey`. */
  readonly sslcert?: string;
  /** libpq `sslkey`: PEM file of the unencrypted private key of `sslcert`. Its contents are never logged. */
  readonly sslkey?: string;
  /** Which host of `hosts` is acceptable. Default `any`. */
  readonly targetSessionAttrs: TargetSessionAttrs;
  /** Reported in `pg_stat_activity.application_name`. */
  readonly applicationName?: string;
  /** Server-side `statement_timeout` for every connection, ms. Default: server's (none). */
  readonly statementTimeoutMs?: number;
  /** Connections kept open even when idle (warmed up in the background). Default 1. */
  readonly minConnections: number;
  /** Upper bound on open connections. Default 10. */
  readonly maxConnections: number;
  /** How long one TCP connect + authentication may take, ms. Default 10,000. */
  readonly connectionTimeoutMs: number;
  /** How long `acquire()` waits for a free connection before `PoolTimeoutError`, ms. Default 10,000. */
  readonly acquireTimeoutMs: number;
  /** Idle connections above `minConnections` are closed after this long, ms. 0 = never. Default 600,000. */
  readonly idleTimeoutMs: number;
  /** Connections are retired after this long (minus up to 10% random jitter), ms. 0 = never. Default 1,800,000. */
  readonly maxLifetimeMs: number;
  /** Retries in `withConnectionRetry`. Default 5. */
  readonly maxRetries: number;
  /** Base of the exponential backoff between retries, ms. Default 2,000. */
  readonly retryIntervalMs: number;
  /** Cap on one backoff sleep, ms. Default 30,000. */
  readonly maxRetryIntervalMs: number;
  /** TCP keepalive on every connection. Default true. */
  readonly keepAlive: boolean;
  /** A connection idle longer than this is checked with a round trip before hand-out, ms. Default 1,000. */
  readonly validateAfterIdleMs: number;
  /** Log the borrower's stack when a lease is held longer than this, ms. 0 = off (default). */
  readonly leakDetectionThresholdMs: number;
}

/** What code may pass to {@link resolvePoolConfig} / `createPool`: any subset, plus `host`/`port` shorthands. */
export type PoolConfigInput = { -readonly [K in keyof PoolConfig]?: PoolConfig[K] } & {
  host?: string;
  port?: number;
  /** A `postgres://` URL; explicit fields win over it. */
  connectionString?: string;
};

export const DEFAULTS = {
  sslmode: 'prefer',
  targetSessionAttrs: 'any',
  minConnections: 1,
  maxConnections: 10,
  connectionTimeoutMs: 10_000,
  acquireTimeoutMs: 10_000,
  idleTimeoutMs: 600_000,
  maxLifetimeMs: 1_800_000,
  maxRetries: 5,
  retryIntervalMs: 2_000,
  maxRetryIntervalMs: 30_000,
  keepAlive: true,
  validateAfterIdleMs: 1_000,
  leakDetectionThresholdMs: 0,
} as const satisfies Partial<PoolConfig>;

type NumericKey = {
  [K in keyof PoolConfig]-?: NonNullable<PoolConfig[K]> extends number ? K : never;
}[keyof PoolConfig];

/** Lower bounds for numeric fields (all integers). */
const MINIMUMS: Record<NumericKey, number> = {
  statementTimeoutMs: 0,
  minConnections: 0,
  maxConnections: 1,
  connectionTimeoutMs: 1,
  acquireTimeoutMs: 1,
  idleTimeoutMs: 0,
  maxLifetimeMs: 0,
  maxRetries: 0,
  retryIntervalMs: 0,
  maxRetryIntervalMs: 0,
  validateAfterIdleMs: 0,
  leakDetectionThresholdMs: 0,
};

/** Parse a `postgres://` URL, including libpq's multi-host form `postgres://u:p@h1:5432,h2:5433/db`. */
export function parseDatabaseUrl(url: string): { input: PoolConfigInput; problems: string[] } {
  const problems: string[] = [];
  const match = /^(postgres|postgresql):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/.exec(url.trim());
  if (!match) return { input: {}, problems: ['is not a postgres:// or postgresql:// URL'] };
  const [, , userinfo, hostlist = '', path, query] = match;
  const input: PoolConfigInput = {};
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      problems.push(`has a malformed percent-encoding in the ${what}`);
      return s;
    }
  };
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
    if (user) input.user = decode(user, 'user');
    if (colon !== -1) input.password = decode(userinfo.slice(colon + 1), 'password');
  }
  if (hostlist) {
    const hosts: HostPort[] = [];
    for (const part of hostlist.split(',')) {
      const m = /^(\[[^\]]+\]|[^:]*)(?::(.*))?$/.exec(part);
      const host = m?.[1]?.replace(/^\[|\]$/g, '') ?? '';
      const portText = m?.[2];
      const port = portText === undefined || portText === '' ? 5432 : Number(portText);
      if (!host) problems.push('has an empty host in its host list');
      else if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`has an invalid port for host ${host}`);
      else hosts.push({ host: decode(host, 'host'), port });
    }
    input.hosts = hosts;
  }
  if (path) input.database = decode(path, 'database');
  const params = new URLSearchParams(query ?? '');
  for (const [key, value] of params) {
    switch (key) {
      case 'sslmode':
        input.sslmode = value as SslMode;
        break;
      case 'sslrootcert':
      case 'sslcert':
      case 'sslkey':
        if (value !== '') input[key] = value;
        break;
      case 'application_name':
        input.applicationName = value;
        break;
      case 'target_session_attrs':
        input.targetSessionAttrs = value as TargetSessionAttrs;
        break;
      case 'connect_timeout':
        input.connectionTimeoutMs = secondsToMs(value) ?? Number.NaN;
        break;
      case 'statement_timeout':
        input.statementTimeoutMs = /^\d+$/.test(value) ? Number(value) : Number.NaN;
        break;
      case 'user':
        input.user = value;
        break;
      case 'password':
        input.password = value;
        break;
      case 'host':
        input.hosts = value.split(',').map((h) => ({ host: h, port: input.hosts?.[0]?.port ?? 5432 }));
        break;
      case 'port':
        if (/^\d+$/.test(value) && input.hosts) input.hosts = input.hosts.map((h) => ({ ...h, port: Number(value) }));
        else problems.push('has an invalid port parameter');
        break;
      default:
        problems.push(`has an unsupported parameter "${key}"`);
    }
  }
  return { input, problems };
}

function secondsToMs(text: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(text.trim()) ? Math.round(Number(text) * 1000) : undefined;
}

/** Show a user-supplied value in an error without letting it run on (it is never a password here). */
function shown(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

export interface LoadConfigOptions {
  /** Receives warnings about values adjusted on load. */
  logger?: Logger;
}

/**
 * Read the pool configuration from the environment.
 *
 * Precedence per field: the seed's `DB_*` variables, then `DATABASE_URL`, then libpq's `PG*`
 * variables, then defaults. Every invalid value is reported in ONE {@link ConfigError} naming each
 * variable. `DB_CONNECTION_TIMEOUT` and `DB_RETRY_INTERVAL` are seconds (as in the seed); the newer
 * `*_MS` variables are milliseconds. Documented adjustment: a `DB_CONNECTION_TIMEOUT` between 0 and 1
 * second is raised to 1 second with a warning (the seed's clamp); nothing else is clamped.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, options: LoadConfigOptions = {}): PoolConfig {
  const problems: ConfigProblem[] = [];
  const names: Partial<Record<keyof PoolConfig, string>> = {};
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const fromPg: PoolConfigInput = {};
  const fromDb: PoolConfigInput = {};
  let fromUrl: PoolConfigInput = {};

  const url = get('DATABASE_URL');
  if (url) {
    const parsed = parseDatabaseUrl(url);
    // The URL may contain a password: problems describe it, never echo it.
    for (const message of parsed.problems) problems.push({ variable: 'DATABASE_URL', message });
    fromUrl = parsed.input;
    for (const key of Object.keys(fromUrl) as (keyof PoolConfig)[]) names[key] = 'DATABASE_URL';
  }

  const integer = (target: PoolConfigInput, name: string, key: NumericKey, scale = 1, decimals = false) => {
    const text = get(name);
    if (text === undefined) return;
    const ok = decimals ? /^\d+(\.\d+)?$/.test(text) : /^\d+$/.test(text);
    if (!ok) {
      problems.push({
        variable: name,
        message: `must be a ${decimals ? 'non-negative number' : 'non-negative integer'}${scale === 1000 ? ' of seconds' : ''}, got ${shown(text)}`,
      });
      return;
    }
    target[key] = Math.round(Number(text) * scale);
    names[key] = name;
  };
  const text = (
    target: PoolConfigInput,
    name: string,
    key: 'database' | 'user' | 'password' | 'applicationName' | 'sslrootcert' | 'sslcert' | 'sslkey',
  ) => {
    const value = env[name];
    if (value === undefined || value === '') return;
    target[key] = value;
    names[key] = name;
  };
  const hostsFrom = (target: PoolConfigInput, hostVar: string, portVar: string) => {
    const hostText = get(hostVar);
    const portText = get(portVar);
    const hostList = hostText?.split(',').map((h) => h.trim());
    const portList = portText?.split(',').map((p) => p.trim());
    const badPort = portList?.find((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535);
    if (badPort !== undefined) {
      problems.push({
        variable: portVar,
        message: `must be a port number 1-65535 (or a comma-separated list), got ${shown(portText ?? '')}`,
      });
      return;
    }
    if (hostList?.some((h) => h === '')) {
      problems.push({ variable: hostVar, message: 'has an empty entry in its host list' });
      return;
    }
    if (hostList && portList && portList.length !== 1 && portList.length !== hostList.length) {
      problems.push({ variable: portVar, message: `lists ${portList.length} ports for ${hostList.length} hosts` });
      return;
    }
    if (!hostList && !portList) return;
    const base = hostList ?? (fromUrl.hosts ?? [{ host: 'localhost', port: 5432 }]).map((h) => h.host);
    target.hosts = base.map((host, i) => ({
      host,
      port: Number(portList ? (portList[i] ?? portList[0]) : (fromUrl.hosts?.[i]?.port ?? 5432)),
    }));
    names.hosts = hostList ? hostVar : portVar;
  };
  const choice = <T extends string>(
    target: PoolConfigInput,
    name: string,
    key: 'sslmode' | 'targetSessionAttrs',
    allowed: readonly T[],
  ) => {
    const value = get(name);
    if (value === undefined) return;
    if (!allowed.includes(value as T)) {
      problems.push({ variable: name, message: `must be one of ${allowed.join(', ')}; got ${shown(value)}` });
      return;
    }
    (target as Record<string, unknown>)[key] = value;
    names[key] = name;
  };

  // libpq's variables (lowest precedence after defaults).
  hostsFrom(fromPg, 'PGHOST', 'PGPORT');
  text(fromPg, 'PGDATABASE', 'database');
  text(fromPg, 'PGUSER', 'user');
  text(fromPg, 'PGPASSWORD', 'password');
  text(fromPg, 'PGAPPNAME', 'applicationName');
  choice(fromPg, 'PGSSLMODE', 'sslmode', SSL_MODES);
  text(fromPg, 'PGSSLROOTCERT', 'sslrootcert');
  text(fromPg, 'PGSSLCERT', 'sslcert');
  text(fromPg, 'PGSSLKEY', 'sslkey');
  choice(fromPg, 'PGTARGETSESSIONATTRS', 'targetSessionAttrs', TARGET_ATTRS);
  integer(fromPg, 'PGCONNECT_TIMEOUT', 'connectionTimeoutMs', 1000);
  // DATABASE_URL overrides PG* field by field; record its names again where it set something.
  for (const key of Object.keys(fromUrl) as (keyof PoolConfig)[]) names[key] = 'DATABASE_URL';

  // The seed's names win over everything else.
  hostsFrom(fromDb, 'DB_HOST', 'DB_PORT');
  text(fromDb, 'DB_NAME', 'database');
  text(fromDb, 'DB_USER', 'user');
  text(fromDb, 'DB_PASS', 'password');
  text(fromDb, 'DB_APPLICATION_NAME', 'applicationName');
  choice(fromDb, 'DB_SSLMODE', 'sslmode', SSL_MODES);
  text(fromDb, 'DB_SSLROOTCERT', 'sslrootcert');
  text(fromDb, 'DB_SSLCERT', 'sslcert');
  text(fromDb, 'DB_SSLKEY', 'sslkey');
  choice(fromDb, 'DB_TARGET_SESSION_ATTRS', 'targetSessionAttrs', TARGET_ATTRS);
  integer(fromDb, 'DB_MIN_CONNECTIONS', 'minConnections');
  integer(fromDb, 'DB_MAX_CONNECTIONS', 'maxConnections');
  integer(fromDb, 'DB_CONNECTION_TIMEOUT', 'connectionTimeoutMs', 1000, true);
  integer(fromDb, 'DB_MAX_RETRIES', 'maxRetries');
  integer(fromDb, 'DB_RETRY_INTERVAL', 'retryIntervalMs', 1000, true);
  integer(fromDb, 'DB_MAX_RETRY_INTERVAL_MS', 'maxRetryIntervalMs');
  integer(fromDb, 'DB_ACQUIRE_TIMEOUT_MS', 'acquireTimeoutMs');
  integer(fromDb, 'DB_IDLE_TIMEOUT_MS', 'idleTimeoutMs');
  integer(fromDb, 'DB_MAX_LIFETIME_MS', 'maxLifetimeMs');
  integer(fromDb, 'DB_STATEMENT_TIMEOUT_MS', 'statementTimeoutMs');
  integer(fromDb, 'DB_VALIDATE_AFTER_IDLE_MS', 'validateAfterIdleMs');
  integer(fromDb, 'DB_LEAK_DETECTION_THRESHOLD_MS', 'leakDetectionThresholdMs');
  const keepAlive = get('DB_KEEPALIVE');
  if (keepAlive !== undefined) {
    if (/^(true|1|on|yes)$/i.test(keepAlive)) fromDb.keepAlive = true;
    else if (/^(false|0|off|no)$/i.test(keepAlive)) fromDb.keepAlive = false;
    else problems.push({ variable: 'DB_KEEPALIVE', message: `must be true or false, got ${shown(keepAlive)}` });
    names.keepAlive = 'DB_KEEPALIVE';
  }

  const seconds = get('DB_CONNECTION_TIMEOUT');
  if (fromDb.connectionTimeoutMs !== undefined && fromDb.connectionTimeoutMs > 0 && fromDb.connectionTimeoutMs < 1000) {
    options.logger?.warn(
      { variable: 'DB_CONNECTION_TIMEOUT', value: seconds, adjustedTo: 1 },
      'DB_CONNECTION_TIMEOUT below 1 second raised to 1 second',
    );
    fromDb.connectionTimeoutMs = 1000;
  }

  const merged: PoolConfigInput = { ...fromPg, ...fromUrl, ...fromDb };
  return resolvePoolConfig(merged, { names, problems });
}

interface ResolveContext {
  /** Variable each field came from, for messages (defaults to the field name). */
  names?: Partial<Record<keyof PoolConfig, string>>;
  /** Problems already found while reading the input. */
  problems?: ConfigProblem[];
}

/**
 * Validate a configuration given in code and fill defaults. Throws one {@link ConfigError} listing
 * every invalid field.
 */
export function resolvePoolConfig(input: PoolConfigInput = {}, context: ResolveContext = {}): PoolConfig {
  const problems = [...(context.problems ?? [])];
  const nameOf = (key: keyof PoolConfig) => context.names?.[key] ?? key;
  let base: PoolConfigInput = {};
  if (input.connectionString !== undefined) {
    const parsed = parseDatabaseUrl(input.connectionString);
    for (const message of parsed.problems) problems.push({ variable: 'connectionString', message });
    base = parsed.input;
  }
  const merged: PoolConfigInput = { ...base, ...stripUndefined(input) };
  // `host`/`port` are shorthands for a one-element `hosts`; an explicit `hosts` wins.
  if (input.hosts === undefined && (input.host !== undefined || input.port !== undefined)) {
    merged.hosts = [
      { host: input.host ?? base.hosts?.[0]?.host ?? 'localhost', port: input.port ?? base.hosts?.[0]?.port ?? 5432 },
    ];
  }
  const hosts = merged.hosts ?? [{ host: 'localhost', port: 5432 }];
  if (hosts.length === 0) problems.push({ variable: nameOf('hosts'), message: 'must list at least one host' });
  for (const h of hosts) {
    if (typeof h.host !== 'string' || h.host === '') problems.push({ variable: nameOf('hosts'), message: 'has an empty host' });
    if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535)
      problems.push({ variable: nameOf('hosts'), message: `port must be 1-65535, got ${String(h.port)}` });
  }

  const numbers = {} as Record<NumericKey, number | undefined>;
  for (const key of Object.keys(MINIMUMS) as NumericKey[]) {
    const value = merged[key] ?? (DEFAULTS as Partial<Record<NumericKey, number>>)[key];
    numbers[key] = value;
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < MINIMUMS[key]) {
      // Avoid duplicating a problem already reported for the same variable while parsing.
      if (!problems.some((p) => p.variable === nameOf(key)))
        problems.push({ variable: nameOf(key), message: `must be an integer >= ${MINIMUMS[key]}, got ${String(value)}` });
    }
  }
  const min = numbers.minConnections ?? DEFAULTS.minConnections;
  const max = numbers.maxConnections ?? DEFAULTS.maxConnections;
  if (Number.isInteger(min) && Number.isInteger(max) && min > max) {
    problems.push({
      variable: nameOf('minConnections'),
      message: `(${min}) must not exceed ${nameOf('maxConnections')} (${max})`,
    });
  }
  const sslmode = merged.sslmode ?? (merged.sslrootcert === SYSTEM_ROOTS ? 'verify-full' : DEFAULTS.sslmode);
  if (!SSL_MODES.includes(sslmode))
    problems.push({
      variable: nameOf('sslmode'),
      message: `must be one of ${SSL_MODES.join(', ')}; got ${shown(String(sslmode))}`,
    });
  const tls = checkTlsSettings(
    { ...merged, sslmode },
    nameOf,
    (key) => nameOf(key) === 'DATABASE_URL' || (input[key] === undefined && base[key] !== undefined),
  );
  problems.push(...tls.problems);
  const targetSessionAttrs = merged.targetSessionAttrs ?? DEFAULTS.targetSessionAttrs;
  if (!TARGET_ATTRS.includes(targetSessionAttrs))
    problems.push({
      variable: nameOf('targetSessionAttrs'),
      message: `must be one of ${TARGET_ATTRS.join(', ')}; got ${shown(String(targetSessionAttrs))}`,
    });
  const user = merged.user ?? 'postgres';
  if (user.includes('\0')) problems.push({ variable: nameOf('user'), message: 'must not contain a NUL byte' });
  const database = merged.database ?? user;
  if (database.includes('\0')) problems.push({ variable: nameOf('database'), message: 'must not contain a NUL byte' });
  if (merged.applicationName !== undefined && merged.applicationName.length > 63)
    problems.push({ variable: nameOf('applicationName'), message: 'must be at most 63 characters' });
  if (merged.keepAlive !== undefined && typeof merged.keepAlive !== 'boolean')
    problems.push({ variable: nameOf('keepAlive'), message: 'must be a boolean' });

  if (problems.length > 0) throw new ConfigError(problems);

  const config = {
    hosts: hosts.map((h) => Object.freeze({ host: h.host, port: h.port })),
    database,
    user,
    sslmode,
    ...tls.settings,
    targetSessionAttrs,
    ...(merged.applicationName !== undefined ? { applicationName: merged.applicationName } : {}),
    ...(numbers.statementTimeoutMs !== undefined ? { statementTimeoutMs: numbers.statementTimeoutMs } : {}),
    minConnections: min,
    maxConnections: max,
    connectionTimeoutMs: numbers.connectionTimeoutMs ?? DEFAULTS.connectionTimeoutMs,
    acquireTimeoutMs: numbers.acquireTimeoutMs ?? DEFAULTS.acquireTimeoutMs,
    idleTimeoutMs: numbers.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    maxLifetimeMs: numbers.maxLifetimeMs ?? DEFAULTS.maxLifetimeMs,
    maxRetries: numbers.maxRetries ?? DEFAULTS.maxRetries,
    retryIntervalMs: numbers.retryIntervalMs ?? DEFAULTS.retryIntervalMs,
    maxRetryIntervalMs: numbers.maxRetryIntervalMs ?? DEFAULTS.maxRetryIntervalMs,
    keepAlive: merged.keepAlive ?? DEFAULTS.keepAlive,
    validateAfterIdleMs: numbers.validateAfterIdleMs ?? DEFAULTS.validateAfterIdleMs,
    leakDetectionThresholdMs: numbers.leakDetectionThresholdMs ?? DEFAULTS.leakDetectionThresholdMs,
  } satisfies Omit<PoolConfig, 'password'> as PoolConfig;
  // Non-enumerable: never appears in console.log, JSON.stringify, spread copies or pino output.
  Object.defineProperty(config, 'password', { value: merged.password, enumerable: false, writable: false });
  return Object.freeze(config);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `host:port` of the first host, for messages. */
export function describeTarget(config: PoolConfig): string {
  return config.hosts.map((h) => `${h.host}:${h.port}`).join(',');
}
