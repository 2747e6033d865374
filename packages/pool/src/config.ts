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
  /**
   * How long a host that could not be reached (or a standby found lagging) is skipped by new connects
   * when `hosts` lists more than one server, ms; then one connect at a time probes it again. Also how
   * long a `prefer-standby` connection that fell back to a primary is kept before the pool looks for a
   * standby again. 0 = no memory (every connect tries every host, as libpq does). Default 10,000.
   */
  readonly hostRecheckMs: number;
  /**
   * A standby whose replay lags behind what it received by more than this is skipped, ms (checked at
   * connect and, per host, at hand-out at most every `min(hostRecheckMs, maxReplicationLagMs)`). Unset
   * (default): no limit.
   */
  readonly maxReplicationLagMs?: number;
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
  /**
   * Idle time before the first TCP keepalive probe, ms (libpq `keepalives_idle`, in seconds there).
   * Node sets only this; probe interval and count stay the operating system's. Default 10,000.
   */
  readonly keepAliveIdleMs: number;
  /**
   * Client-side bound on a query, ms: when the server sends nothing for this long while a query
   * waits on it, the connection is closed and the caller gets `ConnectionLostError` (pgJDBC's
   * `socketTimeout`). 0 = off. Default: off, or `statementTimeoutMs + connectionTimeoutMs` when a
   * statement timeout is set (the server promised to answer by then; silence past it means the peer is gone).
   */
  readonly queryTimeoutMs: number;
  /** A connection idle longer than this is checked with a round trip before hand-out, ms. Default 1,000. */
  readonly validateAfterIdleMs: number;
  /** Log the borrower's stack when a lease is held longer than this, ms. 0 = off (default). */
  readonly leakDetectionThresholdMs: number;
  /**
   * Prepared statements each connection keeps, least recently used out first: a statement with values
   * is prepared on its first run and only bound after that. 0 = off (every statement unnamed: PgBouncer
   * before 1.21 in transaction mode). Default 256.
   */
  readonly statementCacheSize: number;
  /**
   * Opt-in pipelining of `pool.query` (postgres.js's model): independent queries from different callers
   * share connections and are written without waiting for earlier results, each with its own Sync (one
   * query's error fails only that query). Leases, transactions, batches and RLS scopes still get an
   * exclusive connection. Default false.
   */
  readonly pipelining: boolean;
  /** With `pipelining`: most queries in flight on one pipelined connection; beyond it callers queue. Default 16. */
  readonly pipelineDepth: number;
}

/** What code may pass to {@link resolvePoolConfig} / `createPool`: any subset, plus `host`/`port` shorthands. */
export type PoolConfigInput = { -readonly [K in keyof PoolConfig]?: PoolConfig[K] } & {
  host?: string;
  port?: number;
  /** A `postgres://` URL; explicit fields win over it. */
  connectionString?: string;
};

/** The type each option must have; checked before anything else, so a wrong type is a ConfigError, never a TypeError. */
type OptionKind = 'string' | 'integer' | 'boolean' | 'hosts';

/**
 * Every option {@link resolvePoolConfig} / `createPool` accepts, with its type: the one list that unknown-option
 * errors, suggestions and type checks derive from. The compiler insists a new field of {@link PoolConfigInput}
 * gets its line here.
 */
const OPTION_KINDS = {
  hosts: 'hosts',
  database: 'string',
  user: 'string',
  password: 'string',
  sslmode: 'string',
  sslrootcert: 'string',
  sslcert: 'string',
  sslkey: 'string',
  targetSessionAttrs: 'string',
  hostRecheckMs: 'integer',
  maxReplicationLagMs: 'integer',
  applicationName: 'string',
  statementTimeoutMs: 'integer',
  minConnections: 'integer',
  maxConnections: 'integer',
  connectionTimeoutMs: 'integer',
  acquireTimeoutMs: 'integer',
  idleTimeoutMs: 'integer',
  maxLifetimeMs: 'integer',
  maxRetries: 'integer',
  retryIntervalMs: 'integer',
  maxRetryIntervalMs: 'integer',
  keepAlive: 'boolean',
  keepAliveIdleMs: 'integer',
  queryTimeoutMs: 'integer',
  validateAfterIdleMs: 'integer',
  leakDetectionThresholdMs: 'integer',
  statementCacheSize: 'integer',
  pipelining: 'boolean',
  pipelineDepth: 'integer',
  host: 'string',
  port: 'integer',
  connectionString: 'string',
} as const satisfies Record<keyof PoolConfigInput, OptionKind>;

export const DEFAULTS = {
  sslmode: 'prefer',
  targetSessionAttrs: 'any',
  hostRecheckMs: 10_000,
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
  keepAliveIdleMs: 10_000,
  validateAfterIdleMs: 1_000,
  leakDetectionThresholdMs: 0,
  statementCacheSize: 256,
  pipelining: false,
  pipelineDepth: 16,
} as const satisfies Partial<PoolConfig>;

type NumericKey = {
  [K in keyof PoolConfig]-?: NonNullable<PoolConfig[K]> extends number ? K : never;
}[keyof PoolConfig];

/** Lower bounds for numeric fields (all integers). */
const MINIMUMS: Record<NumericKey, number> = {
  statementTimeoutMs: 0,
  hostRecheckMs: 0,
  maxReplicationLagMs: 0,
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
  keepAliveIdleMs: 0,
  queryTimeoutMs: 0,
  statementCacheSize: 0,
  pipelineDepth: 1,
};

/** Said whenever a URL cannot be split with certainty; it names no part of the URL. */
const ENCODE_HINT =
  'percent-encode special characters in the password, user and database name (encodeURIComponent: @ : / ? # % [ ] and space)';

/**
 * Parse a `postgres://` URL, including libpq's multi-host form `postgres://u:p@h1:5432,h2:5433/db`.
 * The user info ends at the LAST `@` before the host (as the WHATWG URL parser and libpq do), so an
 * unencoded `@` in a password still splits right. A URL that cannot be split with certainty (an
 * unencoded `/`, `?` or `#` in the password) is a problem, and no problem quotes any part of the URL.
 */
export function parseDatabaseUrl(url: string): { input: PoolConfigInput; problems: string[] } {
  const problems: string[] = [];
  if (typeof url !== 'string') return { input: {}, problems: [`must be a string, got ${describeShape(url)}`] };
  const match = /^(?:postgres|postgresql):\/\/(.*)$/s.exec(url.trim());
  if (!match) return { input: {}, problems: ['is not a postgres:// or postgresql:// URL'] };
  const rest = match[1] ?? '';
  // libpq has no fragment: a "#" is an unencoded character, most likely in the password.
  if (rest.includes('#')) return { input: {}, problems: [`contains an unencoded "#"; ${ENCODE_HINT}`] };
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd === -1 ? '' : rest.slice(authorityEnd);
  const queryStart = tail.indexOf('?');
  const path = (queryStart === -1 ? tail : tail.slice(0, queryStart)).replace(/^\//, '');
  const query = queryStart === -1 ? '' : tail.slice(queryStart + 1);
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? undefined : authority.slice(0, at);
  const hostlist = authority.slice(at + 1);
  const input: PoolConfigInput = {};
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      problems.push(`has a malformed percent-encoding in the ${what}; ${ENCODE_HINT}`);
      return s;
    }
  };
  // libpq's query syntax: name=value pairs joined by "&", only %XX decoded ("+" stays "+").
  const params: [string, string][] = [];
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq === -1) problems.push('has a query parameter without "=" (write name=value)');
    else params.push([decode(pair.slice(0, eq), 'name of a parameter'), decode(pair.slice(eq + 1), 'value of a parameter')]);
  }
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
    if (user) input.user = decode(user, 'user');
    if (colon !== -1) input.password = decode(userinfo.slice(colon + 1), 'password');
  }
  let badHostList = false;
  if (hostlist) {
    const hosts: HostPort[] = [];
    for (const part of hostlist.split(',')) {
      const m = /^(\[[^\]]+\]|[^:]*)(?::(.*))?$/.exec(part);
      const host = m?.[1]?.replace(/^\[|\]$/g, '') ?? '';
      const portText = m?.[2];
      const port = portText === undefined || portText === '' ? 5432 : /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
      // Neither the host nor the port is quoted: in a mistyped URL either may be part of the password.
      badHostList ||= !host || !Number.isInteger(port) || port < 1 || port > 65535;
      if (!host) problems.push('has an empty host in its host list');
      else if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push('has an invalid port in its host list');
      else hosts.push({ host: decode(host, 'host'), port });
    }
    if (!badHostList) input.hosts = hosts;
  }
  if (path) input.database = decode(path, 'database');
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
      case 'keepalives':
        if (value === '0' || value === '1') input.keepAlive = value === '1';
        else problems.push('has an invalid keepalives parameter (0 or 1)');
        break;
      case 'keepalives_idle':
        input.keepAliveIdleMs = /^\d+$/.test(value) ? Number(value) * 1000 : Number.NaN;
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
        problems.push(unsupportedParameter(key));
    }
  }
  // An "@" after the host part means the user info was cut short by an unencoded "/" or "?" in the
  // password: what looks like a host, database or parameter may be part of it, so none of it is used.
  const cutShort =
    path.includes('@') || params.some(([key]) => key.includes('@')) || (at === -1 && tail.includes('@') && badHostList);
  if (cutShort)
    return { input: {}, problems: [`has an "@" after the host part, so it cannot be split with certainty; ${ENCODE_HINT}`] };
  return { input, problems };
}

function secondsToMs(text: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(text.trim()) ? Math.round(Number(text) * 1000) : undefined;
}

/**
 * What a value looks like, for messages: never the value itself, which may be a secret set in the
 * wrong variable.
 */
function describeShape(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': {
      const text = value.trim();
      if (text === '') return 'an empty string';
      // Environment values are all text; say what kind of number a numeric one is.
      if (/^-\d+(\.\d+)?$/.test(text)) return 'a negative number (text)';
      if (/^\d+\.\d+$/.test(text)) return 'a decimal number (text)';
      if (/^\d+$/.test(text)) return 'a whole number (text)';
      return `text (${value.length} character${value.length === 1 ? '' : 's'})`;
    }
    case 'number':
      if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : 'an infinite number';
      return Number.isInteger(value) ? (value < 0 ? 'a negative integer' : 'an integer') : 'a fractional number';
    case 'boolean':
      return 'a boolean';
    case 'function':
      return 'a function';
    case 'undefined':
      return 'undefined';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
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
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    problems.push({ variable: 'env', message: `must be an object of environment variables, got ${describeShape(env)}` });
    env = {};
  }
  const wrongType = new Set<string>();
  // Environment values are text; anything else (a number from a hand-built object) is reported once, then ignored.
  const raw = (name: string): string | undefined => {
    const v: unknown = env[name];
    if (v === undefined || typeof v === 'string') return v;
    if (!wrongType.has(name)) {
      wrongType.add(name);
      problems.push({ variable: name, message: `must be a string (environment values are text), got ${describeShape(v)}` });
    }
    return undefined;
  };
  const get = (name: string): string | undefined => {
    const v = raw(name);
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
        message: `must be a ${decimals ? 'non-negative number' : 'non-negative integer'}${scale === 1000 ? ' of seconds' : ''}, got ${describeShape(text)}`,
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
    const value = raw(name);
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
        message: `must be a port number 1-65535 (or a comma-separated list), got ${describeShape(portText)}`,
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
      problems.push({ variable: name, message: `must be one of ${allowed.join(', ')}; got ${describeShape(value)}` });
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
  integer(fromPg, 'PGKEEPALIVESIDLE', 'keepAliveIdleMs', 1000);
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
  integer(fromDb, 'DB_HOST_RECHECK_MS', 'hostRecheckMs');
  integer(fromDb, 'DB_MAX_REPLICATION_LAG_MS', 'maxReplicationLagMs');
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
  integer(fromDb, 'DB_KEEPALIVE_IDLE', 'keepAliveIdleMs', 1000);
  integer(fromDb, 'DB_QUERY_TIMEOUT_MS', 'queryTimeoutMs');
  integer(fromDb, 'DB_STATEMENT_CACHE_SIZE', 'statementCacheSize');
  integer(fromDb, 'DB_PIPELINE_DEPTH', 'pipelineDepth');
  const flag = (variable: string, key: 'keepAlive' | 'pipelining') => {
    const value = get(variable);
    if (value === undefined) return;
    if (/^(true|1|on|yes)$/i.test(value)) fromDb[key] = true;
    else if (/^(false|0|off|no)$/i.test(value)) fromDb[key] = false;
    else problems.push({ variable, message: `must be true or false, got ${describeShape(value)}` });
    names[key] = variable;
  };
  flag('DB_KEEPALIVE', 'keepAlive');
  flag('DB_PIPELINING', 'pipelining');

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
  if (isPoolConfig(input) && !context.problems?.length) return input;
  const problems = [...(context.problems ?? [])];
  const given = checkOptions(input, problems);
  let base: PoolConfigInput = {};
  if (given.connectionString !== undefined) {
    const parsed = parseDatabaseUrl(given.connectionString);
    for (const message of parsed.problems) problems.push({ variable: 'connectionString', message });
    base = parsed.input;
  }
  const nameOf = (key: keyof PoolConfig) =>
    context.names?.[key] ?? (base[key] !== undefined && given[key] === undefined ? 'connectionString' : key);
  // A URL sets several fields: say which one a problem is about.
  const fieldIn = (key: keyof PoolConfig) => (/^(DATABASE_URL|connectionString)$/.test(nameOf(key)) ? `${key} ` : '');
  const merged: PoolConfigInput = { ...base, ...given };
  // `host`/`port` are shorthands for a one-element `hosts`; an explicit `hosts` wins.
  if (given.hosts === undefined && (given.host !== undefined || given.port !== undefined)) {
    merged.hosts = [
      { host: given.host ?? base.hosts?.[0]?.host ?? 'localhost', port: given.port ?? base.hosts?.[0]?.port ?? 5432 },
    ];
  }
  const hosts = merged.hosts ?? [{ host: 'localhost', port: 5432 }];
  if (hosts.length === 0) problems.push({ variable: nameOf('hosts'), message: 'must list at least one host' });
  for (const h of hosts) {
    if (h.host === '') problems.push({ variable: nameOf('hosts'), message: 'has an empty host' });
    else if (h.host.includes('\0')) problems.push({ variable: nameOf('hosts'), message: 'has a host with a NUL character' });
    if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535)
      problems.push({ variable: nameOf('hosts'), message: `port must be an integer 1-65535, got ${describeShape(h.port)}` });
  }

  const numbers = {} as Record<NumericKey, number | undefined>;
  for (const key of Object.keys(MINIMUMS) as NumericKey[]) {
    const value = merged[key] ?? (DEFAULTS as Partial<Record<NumericKey, number>>)[key];
    numbers[key] = value;
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < MINIMUMS[key]) {
      // Avoid duplicating a problem already reported for the same variable while parsing.
      if (!problems.some((p) => p.variable === nameOf(key)))
        problems.push({
          variable: nameOf(key),
          message: `${fieldIn(key)}must be an integer >= ${MINIMUMS[key]}, got ${Number.isInteger(value) ? 'a smaller one' : describeShape(value)}`,
        });
    }
  }
  const min = numbers.minConnections ?? DEFAULTS.minConnections;
  const max = numbers.maxConnections ?? DEFAULTS.maxConnections;
  if (Number.isInteger(min) && Number.isInteger(max) && min > max) {
    problems.push({
      variable: nameOf('minConnections'),
      message: `must not exceed ${nameOf('maxConnections')}`,
    });
  }
  const sslmode = merged.sslmode ?? (merged.sslrootcert === SYSTEM_ROOTS ? 'verify-full' : DEFAULTS.sslmode);
  if (!SSL_MODES.includes(sslmode))
    problems.push({
      variable: nameOf('sslmode'),
      message: `must be one of ${SSL_MODES.join(', ')}; got ${describeShape(sslmode)}`,
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
      message: `must be one of ${TARGET_ATTRS.join(', ')}; got ${describeShape(targetSessionAttrs)}`,
    });
  const user = merged.user ?? 'postgres';
  const database = merged.database ?? user;
  // pg writes these as C strings: a NUL would end one startup parameter and start another
  // (`app\0options\0-c statement_timeout=1` sets a server setting), so none may contain one.
  for (const key of ['user', 'database', 'password', 'applicationName'] as const) {
    if (merged[key]?.includes('\0'))
      problems.push({ variable: nameOf(key), message: `${fieldIn(key)}must not contain a NUL character` });
  }
  if (merged.applicationName !== undefined && Buffer.byteLength(merged.applicationName) > 63)
    problems.push({ variable: nameOf('applicationName'), message: 'must be at most 63 bytes (the server would cut it)' });

  if (problems.length > 0) throw new ConfigError(problems);

  const config = {
    hosts: hosts.map((h) => Object.freeze({ host: h.host, port: h.port })),
    database,
    user,
    sslmode,
    ...tls.settings,
    targetSessionAttrs,
    hostRecheckMs: numbers.hostRecheckMs ?? DEFAULTS.hostRecheckMs,
    ...(numbers.maxReplicationLagMs !== undefined ? { maxReplicationLagMs: numbers.maxReplicationLagMs } : {}),
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
    keepAliveIdleMs: numbers.keepAliveIdleMs ?? DEFAULTS.keepAliveIdleMs,
    queryTimeoutMs: effectiveQueryTimeout(
      numbers.queryTimeoutMs,
      numbers.statementTimeoutMs,
      numbers.connectionTimeoutMs ?? DEFAULTS.connectionTimeoutMs,
    ),
    validateAfterIdleMs: numbers.validateAfterIdleMs ?? DEFAULTS.validateAfterIdleMs,
    leakDetectionThresholdMs: numbers.leakDetectionThresholdMs ?? DEFAULTS.leakDetectionThresholdMs,
    statementCacheSize: numbers.statementCacheSize ?? DEFAULTS.statementCacheSize,
    pipelining: merged.pipelining ?? DEFAULTS.pipelining,
    pipelineDepth: numbers.pipelineDepth ?? DEFAULTS.pipelineDepth,
  } satisfies Omit<PoolConfig, 'password'> as PoolConfig;
  // A non-enumerable getter: never appears in console.log, util.inspect (even with showHidden),
  // JSON.stringify, spread copies or pino output.
  const password = merged.password;
  Object.defineProperty(config, 'password', { get: () => password, enumerable: false });
  RESOLVED.add(config);
  return Object.freeze(config);
}

/** An explicit bound wins (0 = off); else a statement timeout implies one, with the connect timeout as grace. */
function effectiveQueryTimeout(explicit: number | undefined, statementTimeoutMs: number | undefined, graceMs: number): number {
  if (explicit !== undefined) return explicit;
  return statementTimeoutMs !== undefined && statementTimeoutMs > 0 ? statementTimeoutMs + graceMs : 0;
}

const RESOLVED = new WeakSet<object>();

/** True for a configuration {@link resolvePoolConfig} or {@link loadConfig} returned (already validated). */
export function isPoolConfig(value: unknown): value is PoolConfig {
  return typeof value === 'object' && value !== null && RESOLVED.has(value);
}

/**
 * The options code gave, each known and of the right type; every unknown name and wrong type goes to
 * `problems`. The password is read by name: a resolved config's is not enumerable.
 */
function checkOptions(input: unknown, problems: ConfigProblem[]): PoolConfigInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const hint = typeof input === 'string' ? ' (pass a URL as { connectionString })' : '';
    problems.push({ variable: 'config', message: `must be an object of options, got ${describeShape(input)}${hint}` });
    return {};
  }
  const given: Record<string, unknown> = {};
  const source = input as Record<string, unknown>;
  const keys = new Set(Object.keys(source));
  if (source.password !== undefined) keys.add('password');
  for (const key of keys) {
    const value = source[key];
    if (!Object.hasOwn(OPTION_KINDS, key)) {
      problems.push(unknownOption(key, Object.keys(OPTION_KINDS), FOREIGN_OPTIONS));
      continue;
    }
    if (value === undefined) continue;
    const wrong = typeProblems(OPTION_KINDS[key as keyof typeof OPTION_KINDS], value);
    for (const message of wrong) problems.push({ variable: key, message });
    if (wrong.length === 0) given[key] = value;
  }
  return given as PoolConfigInput;
}

function typeProblems(kind: OptionKind, value: unknown): string[] {
  switch (kind) {
    case 'string':
      return typeof value === 'string' ? [] : [`must be a string, got ${describeShape(value)}`];
    case 'integer':
      return typeof value === 'number' ? [] : [`must be a number, got ${describeShape(value)}`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`must be a boolean, got ${describeShape(value)}`];
    case 'hosts': {
      if (!Array.isArray(value)) return [`must be an array of { host, port }, got ${describeShape(value)}`];
      const problems: string[] = [];
      value.forEach((entry: unknown, i) => {
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
          problems.push(`entry ${i} must be an object { host, port }, got ${describeShape(entry)}`);
          return;
        }
        const { host, port, ...extra } = entry as Record<string, unknown>;
        for (const key of Object.keys(extra)) {
          const name = quotable(key) ? key : 'a field whose name is not shown';
          problems.push(`entry ${i}: ${name} is not a field${insteadOf(key, ['host', 'port'], { hostname: 'host' })}`);
        }
        if (typeof host !== 'string') problems.push(`entry ${i}: host must be a string, got ${describeShape(host)}`);
        if (typeof port !== 'number') problems.push(`entry ${i}: port must be a number, got ${describeShape(port)}`);
      });
      return problems;
    }
  }
}

/**
 * Names users bring from pg.Pool, pg.Client and libpq, mapped to this pool's option, or to a hint
 * where there is no equivalent.
 */
const FOREIGN_OPTIONS: Record<string, string> = {
  max: 'maxConnections',
  min: 'minConnections',
  poolSize: 'maxConnections',
  idleTimeoutMillis: 'idleTimeoutMs',
  connectionTimeoutMillis: 'connectionTimeoutMs',
  connect_timeout: 'connectionTimeoutMs',
  maxLifetimeSeconds: 'maxLifetimeMs',
  maxUses: 'maxLifetimeMs',
  ssl: 'sslmode',
  application_name: 'applicationName',
  fallback_application_name: 'applicationName',
  statement_timeout: 'statementTimeoutMs',
  query_timeout: 'queryTimeoutMs',
  target_session_attrs: 'targetSessionAttrs',
  keepAliveInitialDelayMillis: 'keepAliveIdleMs',
  keepalives_idle: 'keepAliveIdleMs',
  socketTimeout: 'queryTimeoutMs',
  statement_cache_capacity: 'statementCacheSize',
  prepare: 'use statementCacheSize (0 turns prepared statements off)',
  dbname: 'database',
  username: 'user',
  hostname: 'host',
  url: 'connectionString',
  logger: 'pass it as the second argument: createPool(config, { logger })',
  log: 'pass a logger as the second argument: createPool(config, { logger })',
  hooks: 'pass them as the second argument: createPool(config, { hooks })',
  lock_timeout: 'set it per connection in an onConnect hook',
  idle_in_transaction_session_timeout: 'set it per connection in an onConnect hook',
  options: 'set session settings in an onConnect hook',
  client_encoding: 'set it per connection in an onConnect hook',
  types: 'register type parsers in an onConnect hook',
};

/** A name from the caller that is safe to quote in a message (a long or odd one may be a pasted secret). */
function quotable(name: string): boolean {
  return /^[A-Za-z_$][\w$.-]{0,63}$/.test(name);
}

/** What to write instead of an unknown name: a known alias first, then the closest valid name, else the valid names. */
function insteadOf(key: string, valid: readonly string[], aliases: Record<string, string> = {}): string {
  const alias = Object.hasOwn(aliases, key) ? aliases[key] : undefined;
  if (alias !== undefined && !valid.includes(alias)) return `; ${alias}`;
  const suggestion = alias ?? (quotable(key) ? closestName(key, valid) : undefined);
  return suggestion !== undefined ? `; did you mean ${suggestion}?` : ` (valid: ${valid.join(', ')})`;
}

function unknownOption(key: string, valid: readonly string[], aliases: Record<string, string> = {}): ConfigProblem {
  return quotable(key)
    ? { variable: key, message: `is not an option${insteadOf(key, valid, aliases)}` }
    : {
        variable: 'config',
        message: `has an option whose name is not shown (it does not look like a name)${insteadOf(key, valid)}`,
      };
}

/** The valid name nearest to `key` by edit distance (case, "_" and "-" ignored), if it is close enough to be a typo. */
function closestName(key: string, valid: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const k = norm(key);
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(k.length / 4)) + 1;
  for (const name of valid) {
    const d = editDistance(k, norm(name));
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The query parameters `parseDatabaseUrl` understands, for suggestions. */
const URL_PARAMETERS = [
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'application_name',
  'target_session_attrs',
  'connect_timeout',
  'statement_timeout',
  'keepalives',
  'keepalives_idle',
  'user',
  'password',
  'host',
  'port',
] as const;

function unsupportedParameter(key: string): string {
  const aliases = {
    ssl: 'sslmode',
    dbname: 'put the database name in the path: postgres://host/dbname',
    options: 'set session settings in an onConnect hook',
  };
  const name = quotable(key) ? `parameter "${key}"` : 'parameter whose name is not shown';
  return `has an unsupported ${name}${insteadOf(key, URL_PARAMETERS, aliases)}`;
}

/** Every host as `host:port`, comma-separated in the configured order, for messages. */
export function describeTarget(config: PoolConfig): string {
  return config.hosts.map((h) => `${h.host}:${h.port}`).join(',');
}
