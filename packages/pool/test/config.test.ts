import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import {
  AccountDbError,
  ConfigError,
  type ConfigProblem,
  createPool,
  type Logger,
  loadConfig,
  type PoolConfigInput,
  parseDatabaseUrl,
  resolvePoolConfig,
} from '../src/index.js';

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
    ['zero max', { DB_MAX_CONNECTIONS: '0' }, 'DB_MAX_CONNECTIONS', />= 1, got a smaller one/],
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
    ['URL with bad port', { DATABASE_URL: 'postgres://u:p@h:99999/db' }, 'DATABASE_URL', /invalid port in its host list/],
    [
      'URL with unknown parameter',
      { DATABASE_URL: 'postgres://h/db?sslmod=require' },
      'DATABASE_URL',
      /unsupported parameter "sslmod"; did you mean sslmode\?/,
    ],
    ['URL parameter without "="', { DATABASE_URL: 'postgres://h/db?sslmode' }, 'DATABASE_URL', /without "="/],
    [
      'URL with a bad statement_timeout',
      { DATABASE_URL: 'postgres://h/db?statement_timeout=soon' },
      'DATABASE_URL',
      /statementTimeoutMs/,
    ],
    ['URL with bad sslmode', { DATABASE_URL: 'postgres://h/db?sslmode=please' }, 'DATABASE_URL', /one of disable/],
    ['acquire timeout text', { DB_ACQUIRE_TIMEOUT_MS: '1s' }, 'DB_ACQUIRE_TIMEOUT_MS', /integer/],
    ['idle timeout negative', { DB_IDLE_TIMEOUT_MS: '-1' }, 'DB_IDLE_TIMEOUT_MS', /integer/],
    ['lifetime text', { DB_MAX_LIFETIME_MS: 'forever' }, 'DB_MAX_LIFETIME_MS', /integer/],
    ['statement timeout text', { DB_STATEMENT_TIMEOUT_MS: '5s' }, 'DB_STATEMENT_TIMEOUT_MS', /integer/],
    ['keepalive word', { DB_KEEPALIVE: 'sometimes' }, 'DB_KEEPALIVE', /true or false/],
    ['empty host entry', { DB_HOST: 'a,,b' }, 'DB_HOST', /empty entry/],
    ['ports do not match hosts', { DB_HOST: 'a,b,c', DB_PORT: '1,2' }, 'DB_PORT', /2 ports for 3 hosts/],
    ['application name too long', { DB_APPLICATION_NAME: 'x'.repeat(64) }, 'DB_APPLICATION_NAME', /63 bytes/],
    ['application name too long in bytes', { DB_APPLICATION_NAME: 'é'.repeat(32) }, 'DB_APPLICATION_NAME', /63 bytes/],
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

  test('errors never echo a value: not the password, not a secret pasted into the wrong variable', () => {
    const secret = 'S3cr3t-Pa55word';
    try {
      loadConfig({
        DATABASE_URL: `postgres://alice:${secret}@db:99999/app`,
        DB_PASS: secret,
        DB_MAX_CONNECTIONS: secret,
        DB_PORT: secret,
        DB_SSLMODE: secret,
        DB_KEEPALIVE: secret,
        DB_TARGET_SESSION_ATTRS: secret,
        DB_RETRY_INTERVAL: secret,
      });
      expect.unreachable();
    } catch (err) {
      expect(AccountDbError.is(err)).toBe(true);
      expect((err as ConfigError).problems).toHaveLength(7);
      expect((err as Error).message).not.toContain(secret);
      expect((err as Error).message).toContain('DB_MAX_CONNECTIONS: must be a non-negative integer, got text (15 characters)');
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

  test('password is non-enumerable: absent from JSON, spreads and inspection (even showHidden)', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db' });
    expect(c.password).toBe('hunter2');
    expect(JSON.stringify(c)).not.toContain('hunter2');
    expect(JSON.stringify({ ...c })).not.toContain('hunter2');
    expect(Object.keys(c)).not.toContain('password');
    expect(inspect(c, { showHidden: true, depth: null })).not.toContain('hunter2');
  });

  test('a resolved config passes through resolvePoolConfig unchanged, password included', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db', DB_MAX_CONNECTIONS: '3' });
    expect(resolvePoolConfig(c)).toBe(c);
    // A copy with the password given again (as the app does) is validated afresh.
    const copy = resolvePoolConfig({ ...c, password: c.password, applicationName: 'app' });
    expect(copy).toMatchObject({ maxConnections: 3, applicationName: 'app' });
    expect(copy.password).toBe('hunter2');
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

  test('parseDatabaseUrl: the user info ends at the LAST "@" (WHATWG, libpq); libpq query decoding keeps "+"', () => {
    const { input, problems } = parseDatabaseUrl('postgres://app:p@ss@word@db.internal:6432/accounts?application_name=a+b');
    expect(problems).toEqual([]);
    expect(input).toMatchObject({
      user: 'app',
      password: 'p@ss@word',
      hosts: [{ host: 'db.internal', port: 6432 }],
      database: 'accounts',
      applicationName: 'a+b',
    });
  });

  test.each([
    ['an unencoded "/" in the password', 'postgres://alice:Xq9/Zz7@h/db', /"@" after the host part/],
    ['an unencoded "?" in the password', 'postgres://alice:Xq9?Zz7@h/db', /"@" after the host part/],
    ['an unencoded "?" and "=" in the password', 'postgres://alice:Xq9?k=Zz7@h/db', /"@" after the host part/],
    ['an unencoded "#" in the password', 'postgres://alice:Xq9#Zz7@h/db', /unencoded "#"/],
    ['an unencoded "/" and "@" in the password', 'postgres://alice:Xq9@Ww/Zz7@h/db', /"@" after the host part/],
  ])('parseDatabaseUrl: %s is refused with the percent-encoding hint, nothing quoted', (_name, url, message) => {
    const { input, problems } = parseDatabaseUrl(url);
    expect(input).toEqual({});
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).toMatch(/percent-encode special characters in the password/);
    expect(problems[0]).not.toMatch(/Xq9|Zz7|alice|Ww/);
  });

  test('an "@" in a parameter value of a well-formed URL is fine', () => {
    const { input, problems } = parseDatabaseUrl('postgres://app:pw@h/db?application_name=me@laptop');
    expect(problems).toEqual([]);
    expect(input.applicationName).toBe('me@laptop');
  });
});

describe('startup message: NUL is refused in every field that reaches it', () => {
  const injected = (field: string) => `${field}\0options\0-c statement_timeout=1234`;
  const encoded = (field: string) => encodeURIComponent(injected(field));

  function problemOf(load: () => unknown): { variable: string; message: string } {
    try {
      load();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems, JSON.stringify(problems)).toHaveLength(1);
      expect((err as Error).message).not.toContain('statement_timeout');
      return problems[0]!;
    }
    throw new Error('expected a ConfigError');
  }

  test.each([
    ['DB_USER', 'user'],
    ['PGUSER', 'user'],
    ['DB_NAME', 'database'],
    ['PGDATABASE', 'database'],
    ['DB_PASS', 'password'],
    ['PGPASSWORD', 'password'],
    ['DB_APPLICATION_NAME', 'applicationName'],
    ['PGAPPNAME', 'applicationName'],
  ])('env %s', (variable) => {
    expect(problemOf(() => loadConfig({ [variable]: injected('x') }))).toEqual({
      variable,
      message: 'must not contain a NUL character',
    });
  });

  const urls: [string, string, string][] = [
    ['user in the user info', `postgres://${encoded('u')}:pw@h/db`, 'user'],
    ['user parameter', `postgres://h/db?user=${encoded('u')}`, 'user'],
    ['database in the path', `postgres://u:pw@h/${encoded('db')}`, 'database'],
    ['password in the user info', `postgres://u:${encoded('pw')}@h/db`, 'password'],
    ['password parameter', `postgres://u@h/db?password=${encoded('pw')}`, 'password'],
    [
      'application_name parameter',
      'postgres://u@h/db?application_name=probe%00options%00-c%20statement_timeout%3D4321',
      'applicationName',
    ],
    ['host', `postgres://u@${encoded('h')}/db`, 'hosts'],
  ];
  test.each(urls)('DATABASE_URL: %s', (_name, url, field) => {
    const problem = problemOf(() => loadConfig({ DATABASE_URL: url }));
    expect(problem.variable).toBe('DATABASE_URL');
    expect(problem.message).toMatch(
      field === 'hosts' ? /host with a NUL character/ : `${field} must not contain a NUL character`,
    );
  });
  test.each(urls)('connectionString: %s', (_name, url, field) => {
    const problem = problemOf(() => resolvePoolConfig({ connectionString: url }));
    expect(problem.variable).toBe('connectionString');
    expect(problem.message).toMatch(
      field === 'hosts' ? /host with a NUL character/ : `${field} must not contain a NUL character`,
    );
  });

  test.each([
    ['user', { user: injected('u') }],
    ['database', { database: injected('db') }],
    ['password', { password: injected('pw') }],
    ['applicationName', { applicationName: injected('app') }],
    ['host', { host: injected('h') }],
    ['hosts', { hosts: [{ host: injected('h'), port: 5432 }] }],
  ] as [string, PoolConfigInput][])('code: %s (resolvePoolConfig and createPool)', (field, input) => {
    const variable = field === 'host' ? 'hosts' : field;
    expect(problemOf(() => resolvePoolConfig(input)).variable).toBe(variable);
    expect(problemOf(() => createPool({ ...input, minConnections: 0 })).variable).toBe(variable);
  });
});

describe('options are strict: unknown names and wrong types are one ConfigError', () => {
  function problemsOfCode(input: unknown): ConfigProblem[] {
    try {
      createPool(input as PoolConfigInput);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return [...(err as ConfigError).problems];
    }
    throw new Error('expected a ConfigError');
  }

  test.each([
    ['max', 'maxConnections'],
    ['min', 'minConnections'],
    ['idleTimeoutMillis', 'idleTimeoutMs'],
    ['connectionTimeoutMillis', 'connectionTimeoutMs'],
    ['ssl', 'sslmode'],
    ['application_name', 'applicationName'],
    ['statement_timeout', 'statementTimeoutMs'],
    ['query_timeout', 'queryTimeoutMs'],
    ['keepAliveInitialDelayMillis', 'keepAliveIdleMs'],
    ['connectionString_', 'connectionString'],
    ['target_session_attrs', 'targetSessionAttrs'],
    ['maxConections', 'maxConnections'],
    ['minConnection', 'minConnections'],
    ['acquireTimeout', 'acquireTimeoutMs'],
    ['retryIntervalMS', 'retryIntervalMs'],
    ['maxLiftimeMs', 'maxLifetimeMs'],
    ['sslMode', 'sslmode'],
    ['databse', 'database'],
    ['usr', 'user'],
    ['passwrod', 'password'],
    ['username', 'user'],
    ['keepalive', 'keepAlive'],
  ])('%s suggests %s', (name, suggestion) => {
    const problems = problemsOfCode({ host: 'h', [name]: 5 });
    expect(problems).toEqual([{ variable: name, message: `is not an option; did you mean ${suggestion}?` }]);
  });

  test('pg options with no equivalent say what to do instead', () => {
    const problems = problemsOfCode({ logger: {}, lock_timeout: 100, options: '-c x=1' });
    expect(problems.map((p) => `${p.variable}: ${p.message}`)).toEqual([
      'logger: is not an option; pass it as the second argument: createPool(config, { logger })',
      'lock_timeout: is not an option; set it per connection in an onConnect hook',
      'options: is not an option; set session settings in an onConnect hook',
    ]);
  });

  test('a name nothing resembles lists the valid options; an odd-looking name is not quoted', () => {
    const [plain, odd] = problemsOfCode({ frobnicate: 1, 'p@ss w0rd!': 1 });
    expect(plain).toMatchObject({ variable: 'frobnicate', message: expect.stringMatching(/^is not an option \(valid: hosts, /) });
    expect(odd?.variable).toBe('config');
    expect(JSON.stringify(odd)).not.toContain('w0rd');
  });

  test('createPool({ max: 5 }) no longer silently uses 10 connections', () => {
    expect(() => createPool({ maxConnections: 5, max: 5 } as PoolConfigInput)).toThrow(
      /max: is not an option; did you mean maxConnections\?/,
    );
  });

  test('every wrong type, listed at once, each by name, as shapes', () => {
    const problems = problemsOfCode({
      host: 5432,
      port: '5432',
      user: null,
      password: 12345,
      maxConnections: '10',
      minConnections: [],
      keepAlive: 'yes',
      sslmode: true,
      hosts: undefined,
      connectionString: {},
      acquireTimeoutMs: Number.NaN,
      idleTimeoutMs: 1.5,
    });
    expect(problems.map((p) => `${p.variable}: ${p.message}`)).toEqual([
      'host: must be a string, got an integer',
      'port: must be a number, got a whole number (text)',
      'user: must be a string, got null',
      'password: must be a string, got an integer',
      'maxConnections: must be a number, got a whole number (text)',
      'minConnections: must be a number, got an array',
      'keepAlive: must be a boolean, got text (3 characters)',
      'sslmode: must be a string, got a boolean',
      'connectionString: must be a string, got an object',
      'acquireTimeoutMs: must be an integer >= 1, got NaN',
      'idleTimeoutMs: must be an integer >= 0, got a fractional number',
    ]);
    expect(JSON.stringify(problems)).not.toContain('12345');
  });

  test('hosts: [null] and other junk entries are ConfigErrors, not TypeErrors', () => {
    expect(() => resolvePoolConfig({ hosts: [null] } as never)).toThrow(ConfigError);
    const problems = problemsOfCode({
      hosts: [null, 'db:5432', { host: 'a' }, { hostname: 'b', port: 1 }, { host: 'c', port: 0 }],
    });
    expect(problems.map((p) => `${p.variable}: ${p.message}`)).toEqual([
      'hosts: entry 0 must be an object { host, port }, got null',
      'hosts: entry 1 must be an object { host, port }, got text (7 characters)',
      'hosts: entry 2: port must be a number, got undefined',
      'hosts: entry 3: hostname is not a field; did you mean host?',
      'hosts: entry 3: host must be a string, got undefined',
    ]);
    expect(problemsOfCode({ hosts: 'db' })).toEqual([
      { variable: 'hosts', message: 'must be an array of { host, port }, got text (2 characters)' },
    ]);
    expect(problemsOfCode({ hosts: [{ host: 'c', port: 0 }] })).toEqual([
      { variable: 'hosts', message: 'port must be an integer 1-65535, got an integer' },
    ]);
  });

  test('an explicit hosts wins over host/port (a base config with host can be pointed at several hosts)', () => {
    expect(resolvePoolConfig({ host: 'a', port: 1, hosts: [{ host: 'b', port: 2 }] }).hosts).toEqual([{ host: 'b', port: 2 }]);
  });

  test.each([
    ['null', null],
    ['a number', 5],
    ['an array', []],
    ['a URL string', 'postgres://u:S3cr3t@h/db'],
  ])('non-object input (%s) is a ConfigError', (_name, input) => {
    const problems = problemsOfCode(input);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.variable).toBe('config');
    expect(JSON.stringify(problems)).not.toContain('S3cr3t');
  });

  test('a frozen look-alike of a resolved config is validated, not trusted', () => {
    const fake = Object.freeze({ hosts: [{ host: 'h', port: 1 }], maxConnections: 3, user: 'u\0x', max: 3 });
    expect(problemsOfCode(fake).map((p) => p.variable)).toEqual(['max', 'user']);
  });

  test('loadConfig: non-string values in the environment are ConfigErrors, all at once', () => {
    const problems = problemsOf({
      DB_PORT: 5432,
      DB_MAX_CONNECTIONS: 10,
      DB_KEEPALIVE: true,
      DB_PASS: { secret: 'S3cr3t' },
      DATABASE_URL: null,
      PGHOST: ['a'],
    } as never);
    expect(problems.map((p) => `${p.variable}: ${p.message}`).sort()).toEqual(
      [
        'DATABASE_URL: must be a string (environment values are text), got null',
        'DB_KEEPALIVE: must be a string (environment values are text), got a boolean',
        'DB_MAX_CONNECTIONS: must be a string (environment values are text), got an integer',
        'DB_PASS: must be a string (environment values are text), got an object',
        'DB_PORT: must be a string (environment values are text), got an integer',
        'PGHOST: must be a string (environment values are text), got an array',
      ].sort(),
    );
    expect(JSON.stringify(problems)).not.toContain('S3cr3t');
  });

  test.each([
    ['null', null],
    ['a string', 'DB_HOST=x'],
  ])('loadConfig(%s) is a ConfigError', (_name, env) => {
    expect(problemsOf(env as never)).toEqual([
      { variable: 'env', message: expect.stringMatching(/^must be an object of environment variables/) },
    ]);
  });

  test('every field of PoolConfig is an accepted option (a resolved config spreads back in)', () => {
    const c = loadConfig({ DB_APPLICATION_NAME: 'a', DB_STATEMENT_TIMEOUT_MS: '5' });
    expect(() => resolvePoolConfig({ ...c })).not.toThrow();
  });
});
