import { describe, expect, test } from 'vitest';
import { AccountDbError, ConfigError, type Logger, loadConfig, parseDatabaseUrl, resolvePoolConfig } from '../src/index.js';

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig: bad environments', () => {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['non-numeric max', { DB_MAX_CONNECTIONS: 'ten' }, 'DB_MAX_CONNECTIONS', /integer/],
    ['negative min', { DB_MIN_CONNECTIONS: '-1' }, 'DB_MIN_CONNECTIONS', /integer/],
    ['fractional max', { DB_MAX_CONNECTIONS: '2.5' }, 'DB_MAX_CONNECTIONS', /integer/],
    ['zero max', { DB_MAX_CONNECTIONS: '0' }, 'DB_MAX_CONNECTIONS', />= 1/],
    [
      'min > max',
      { DB_MIN_CONNECTIONS: '20', DB_MAX_CONNECTIONS: '5' },
      'DB_MIN_CONNECTIONS',
      /must not exceed DB_MAX_CONNECTIONS/,
    ],
    ['port text', { DB_PORT: 'http' }, 'DB_PORT', /port number/],
    ['port too large', { DB_PORT: '70000' }, 'DB_PORT', /port number/],
    ['PGPORT zero', { PGPORT: '0' }, 'PGPORT', /port number/],
    ['negative connect timeout', { DB_CONNECTION_TIMEOUT: '-5' }, 'DB_CONNECTION_TIMEOUT', /seconds/],
    ['zero connect timeout', { DB_CONNECTION_TIMEOUT: '0' }, 'DB_CONNECTION_TIMEOUT', />= 1/],
    ['retry interval text', { DB_RETRY_INTERVAL: 'soon' }, 'DB_RETRY_INTERVAL', /seconds/],
    ['max retries negative', { DB_MAX_RETRIES: '-3' }, 'DB_MAX_RETRIES', /integer/],
    ['unknown sslmode', { DB_SSLMODE: 'maybe' }, 'DB_SSLMODE', /one of disable/],
    ['unknown PGSSLMODE', { PGSSLMODE: 'strict' }, 'PGSSLMODE', /one of disable/],
    ['unknown target_session_attrs', { DB_TARGET_SESSION_ATTRS: 'leader' }, 'DB_TARGET_SESSION_ATTRS', /one of any/],
    ['malformed URL', { DATABASE_URL: 'mysql://u:p@h/db' }, 'DATABASE_URL', /postgres:\/\//],
    ['URL with bad port', { DATABASE_URL: 'postgres://u:p@h:99999/db' }, 'DATABASE_URL', /invalid port/],
    [
      'URL with unknown parameter',
      { DATABASE_URL: 'postgres://h/db?sslmod=require' },
      'DATABASE_URL',
      /unsupported parameter "sslmod"/,
    ],
    ['URL with bad sslmode', { DATABASE_URL: 'postgres://h/db?sslmode=please' }, 'DATABASE_URL', /one of disable/],
    ['acquire timeout text', { DB_ACQUIRE_TIMEOUT_MS: '1s' }, 'DB_ACQUIRE_TIMEOUT_MS', /integer/],
    ['idle timeout negative', { DB_IDLE_TIMEOUT_MS: '-1' }, 'DB_IDLE_TIMEOUT_MS', /integer/],
    ['lifetime text', { DB_MAX_LIFETIME_MS: 'forever' }, 'DB_MAX_LIFETIME_MS', /integer/],
    ['statement timeout text', { DB_STATEMENT_TIMEOUT_MS: '5s' }, 'DB_STATEMENT_TIMEOUT_MS', /integer/],
    ['keepalive word', { DB_KEEPALIVE: 'sometimes' }, 'DB_KEEPALIVE', /true or false/],
    ['empty host entry', { DB_HOST: 'a,,b' }, 'DB_HOST', /empty entry/],
    ['ports do not match hosts', { DB_HOST: 'a,b,c', DB_PORT: '1,2' }, 'DB_PORT', /2 ports for 3 hosts/],
    ['application name too long', { DB_APPLICATION_NAME: 'x'.repeat(64) }, 'DB_APPLICATION_NAME', /63/],
  ];

  test.each(cases)('%s', (_name, env, variable, message) => {
    const problems = problemsOf(env);
    const problem = problems.find((p) => p.variable === variable);
    expect(problem, JSON.stringify(problems)).toBeDefined();
    expect(problem?.message).toMatch(message);
  });

  test('every problem is reported at once, each by variable name', () => {
    const problems = problemsOf({
      DB_MAX_CONNECTIONS: 'many',
      DB_PORT: 'x',
      DB_SSLMODE: 'nope',
      DB_CONNECTION_TIMEOUT: 'slow',
      DATABASE_URL: 'ftp://example',
    });
    expect(problems.map((p) => p.variable).sort()).toEqual(
      ['DATABASE_URL', 'DB_CONNECTION_TIMEOUT', 'DB_MAX_CONNECTIONS', 'DB_PORT', 'DB_SSLMODE'].sort(),
    );
  });

  test('errors never echo the password from DATABASE_URL or DB_PASS', () => {
    const secret = 'S3cr3t-Pa55word';
    try {
      loadConfig({ DATABASE_URL: `postgres://alice:${secret}@db:99999/app`, DB_PASS: secret, DB_MAX_CONNECTIONS: secret });
      expect.unreachable();
    } catch (err) {
      expect(AccountDbError.is(err)).toBe(true);
      // DB_MAX_CONNECTIONS echoes its own (non-secret) value; the URL's password must not appear via DATABASE_URL.
      const urlProblem = (err as ConfigError).problems.find((p) => p.variable === 'DATABASE_URL');
      expect(urlProblem?.message).not.toContain(secret);
    }
  });
});

describe('loadConfig: values and precedence', () => {
  test('defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      hosts: [{ host: 'localhost', port: 5432 }],
      user: 'postgres',
      database: 'postgres',
      sslmode: 'prefer',
      minConnections: 1,
      maxConnections: 10,
      connectionTimeoutMs: 10_000,
      acquireTimeoutMs: 10_000,
      maxRetries: 5,
      retryIntervalMs: 2_000,
      keepAlive: true,
    });
  });

  test("the seed's names, seconds converted to ms", () => {
    const c = loadConfig({
      DB_HOST: 'db.internal',
      DB_PORT: '6543',
      DB_NAME: 'accounts',
      DB_USER: 'app',
      DB_PASS: 'pw',
      DB_MIN_CONNECTIONS: '2',
      DB_MAX_CONNECTIONS: '20',
      DB_CONNECTION_TIMEOUT: '5',
      DB_MAX_RETRIES: '3',
      DB_RETRY_INTERVAL: '0.5',
    });
    expect(c).toMatchObject({
      hosts: [{ host: 'db.internal', port: 6543 }],
      database: 'accounts',
      user: 'app',
      minConnections: 2,
      maxConnections: 20,
      connectionTimeoutMs: 5000,
      maxRetries: 3,
      retryIntervalMs: 500,
    });
    expect(c.password).toBe('pw');
  });

  test('DB_* beats DATABASE_URL beats PG*', () => {
    const c = loadConfig({
      PGHOST: 'pg-host',
      PGUSER: 'pg-user',
      PGDATABASE: 'pgdb',
      PGAPPNAME: 'from-pg',
      DATABASE_URL: 'postgresql://url-user:pw@url-host:5433/urldb?application_name=from-url',
      DB_NAME: 'dbname',
    });
    expect(c.hosts).toEqual([{ host: 'url-host', port: 5433 }]);
    expect(c.user).toBe('url-user');
    expect(c.database).toBe('dbname');
    expect(c.applicationName).toBe('from-url');
  });

  test('multi-host URL with target_session_attrs and statement_timeout', () => {
    const c = loadConfig({
      DATABASE_URL:
        'postgres://u@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write&statement_timeout=2500&connect_timeout=3',
    });
    expect(c.hosts).toEqual([
      { host: 'h1', port: 5432 },
      { host: 'h2', port: 5433 },
      { host: '::1', port: 5434 },
    ]);
    expect(c.targetSessionAttrs).toBe('read-write');
    expect(c.statementTimeoutMs).toBe(2500);
    expect(c.connectionTimeoutMs).toBe(3000);
  });

  test('multiple DB_HOST entries share one DB_PORT', () => {
    expect(loadConfig({ DB_HOST: 'a, b', DB_PORT: '6000' }).hosts).toEqual([
      { host: 'a', port: 6000 },
      { host: 'b', port: 6000 },
    ]);
  });

  test('password is non-enumerable: absent from JSON, spreads and inspection', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db' });
    expect(c.password).toBe('hunter2');
    expect(JSON.stringify(c)).not.toContain('hunter2');
    expect(JSON.stringify({ ...c })).not.toContain('hunter2');
    expect(Object.keys(c)).not.toContain('password');
  });

  test('a sub-second DB_CONNECTION_TIMEOUT is raised to 1 s with a warning (the seed clamp)', () => {
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
    const c = loadConfig({ DB_CONNECTION_TIMEOUT: '0.2' }, { logger });
    expect(c.connectionTimeoutMs).toBe(1000);
    expect(warnings).toHaveLength(1);
  });

  test('min 0 is allowed (no silent clamp to 1)', () => {
    expect(loadConfig({ DB_MIN_CONNECTIONS: '0' }).minConnections).toBe(0);
  });
});

describe('resolvePoolConfig (code)', () => {
  test('reports field names and every problem', () => {
    try {
      resolvePoolConfig({ maxConnections: 0, minConnections: -1, port: 0, sslmode: 'x' as never });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const vars = (err as ConfigError).problems.map((p) => p.variable);
      expect(vars).toEqual(expect.arrayContaining(['maxConnections', 'minConnections', 'hosts', 'sslmode']));
    }
  });

  test('connectionString plus explicit fields', () => {
    const c = resolvePoolConfig({ connectionString: 'postgres://a:b@h:1/d', database: 'other' });
    expect(c.hosts).toEqual([{ host: 'h', port: 1 }]);
    expect(c.database).toBe('other');
    expect(c.password).toBe('b');
  });

  test('parseDatabaseUrl decodes percent-encoded parts', () => {
    const { input, problems } = parseDatabaseUrl('postgres://us%40er:p%2Fw@host/d%20b');
    expect(problems).toEqual([]);
    expect(input).toMatchObject({ user: 'us@er', password: 'p/w', database: 'd b' });
  });
});
