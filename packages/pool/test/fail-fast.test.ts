import { performance } from 'node:perf_hooks';
import { createTestDatabase, freePort, TcpProxy, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createPool,
  DatabaseUnavailableError,
  type Logger,
  type Pool,
  type PoolConfigInput,
  type PoolConnection,
  PoolTimeoutError,
} from '../src/index.js';
import { recordingLogger } from './recording-logger.js';

// Issue 8 §1: a database that cannot be reached or refuses us fails the acquire with the real cause
// within the connect timeout (+100 ms is the bar), whatever minConnections is, instead of waiting out
// the acquire timeout. The bound asserted below adds a generous margin for this loaded 2-core machine;
// the measured figures are printed after the file.
const CONNECT_TIMEOUT_MS = 1000;
const MARGIN_MS = 1000;

let db: TestDatabase;
let noLoginRole: string;
const NO_LOGIN_PASSWORD = 'no-login-pw-7f3a';
const WRONG_PASSWORD = 'wrong-pw-9c1e';
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];
const measured: { case: string; min: number; ms: number; error: string }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  noLoginRole = `${db.database}_nologin`;
  await db.admin(`create role ${noLoginRole} nologin password '${NO_LOGIN_PASSWORD}'`);
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  if (measured.length > 0) console.table(measured);
  await db.admin(`drop role if exists ${noLoginRole}`);
  await db.drop();
});

function makePool(overrides: PoolConfigInput = {}, logger?: Logger): Pool {
  const pool = createPool(
    {
      host: db.host,
      port: db.port,
      user: db.user,
      password: db.password,
      database: db.database,
      sslmode: 'disable',
      connectionTimeoutMs: CONNECT_TIMEOUT_MS,
      ...overrides,
    },
    logger ? { logger } : {},
  );
  pools.push(pool);
  return pool;
}

async function proxy(mode: TcpProxy['mode'] = { kind: 'pass' }): Promise<TcpProxy> {
  const p = await TcpProxy.start(db.host, db.port);
  p.mode = mode;
  proxies.push(p);
  return p;
}

function causeOf(err: unknown): { code?: string; message: string } {
  return (err as { cause: { code?: string; message: string } }).cause;
}

/** What each failure looks like on the wire, and what the DatabaseUnavailableError's cause must say. */
interface DownCase {
  name: string;
  config(): Promise<PoolConfigInput>;
  cause: { code: string } | { message: RegExp };
}

const downCases: DownCase[] = [
  {
    name: 'nothing listening',
    config: async () => ({ host: '127.0.0.1', port: await freePort() }),
    cause: { code: 'ECONNREFUSED' },
  },
  {
    name: 'black-holed host',
    config: async () => ({ host: '127.0.0.1', port: (await proxy({ kind: 'blackhole' })).port }),
    cause: { message: /timeout/i },
  },
  { name: 'wrong password', config: async () => ({ password: WRONG_PASSWORD }), cause: { code: '28P01' } },
  // Under SCRAM the server does not say whether a role exists: an unknown role is 28P01 too.
  { name: 'unknown role', config: async () => ({ user: 'no_such_role_8f2d' }), cause: { code: '28P01' } },
  {
    name: 'role without LOGIN',
    config: async () => ({ user: noLoginRole, password: NO_LOGIN_PASSWORD }),
    cause: { code: '28000' },
  },
  { name: 'unknown database', config: async () => ({ database: 'no_such_database_8f2d' }), cause: { code: '3D000' } },
  {
    name: 'sslmode=require on a non-TLS server',
    config: async () => ({ sslmode: 'require' }),
    cause: { message: /does not support SSL/i },
  },
];

describe.each([0, 1, 5])('a query right after createPool, minConnections %i', (min) => {
  test.each(downCases)('$name → DatabaseUnavailableError with the real cause within the connect timeout', async (c) => {
    // Default acquire timeout (10 s): failing at it with PoolTimeoutError is the defect.
    const pool = makePool({ ...(await c.config()), minConnections: min });
    const started = performance.now();
    const err = await pool.query('select 1').catch((e: unknown) => e);
    const ms = Math.round(performance.now() - started);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    measured.push({ case: c.name, min, ms, error: `${(err as Error).name} ${cause?.code ?? cause?.message ?? ''}` });

    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    if ('code' in c.cause) expect(causeOf(err).code).toBe(c.cause.code);
    else expect(causeOf(err).message).toMatch(c.cause.message);
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS + MARGIN_MS);
    for (const secret of [db.password, WRONG_PASSWORD, NO_LOGIN_PASSWORD]) expect((err as Error).message).not.toContain(secret);
  });
});

describe('several waiters', () => {
  test('more waiters than maxConnections allows connects, nothing leased: every waiter learns the failure', async () => {
    const p = await proxy({ kind: 'blackhole' });
    const pool = makePool({ host: '127.0.0.1', port: p.port, minConnections: 1, maxConnections: 2 });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 5 }, () => pool.query('select 1').catch((e: unknown) => e)));
    const ms = Math.round(performance.now() - started);
    measured.push({ case: '5 waiters, max 2, black hole', min: 1, ms, error: (results[4] as Error).name });
    for (const err of results) expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS + MARGIN_MS);
  });

  test('a failed connect fails the waiter it was counted for, not one that a leased connection will serve', async () => {
    const p = await proxy();
    const pool = makePool({ host: '127.0.0.1', port: p.port, minConnections: 0, maxConnections: 2, connectionTimeoutMs: 500 });
    const held = await pool.acquire();
    const heldPid = held.processId;
    p.mode = { kind: 'blackhole' };
    // The first waiter gets the one connect maxConnections still allows; the second can only wait for `held`.
    const first = pool.acquire().catch((e: unknown) => e);
    let secondSettled = false;
    const second = pool.acquire({ timeoutMs: 30_000 }).then(
      (lease) => {
        secondSettled = true;
        return lease;
      },
      (e: unknown) => {
        secondSettled = true;
        return e;
      },
    );
    expect(await first).toBeInstanceOf(DatabaseUnavailableError);
    // Every rejection the failed connect caused has settled by the next macrotask.
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondSettled).toBe(false);
    held.release();
    const lease = await second;
    expect(lease).not.toBeInstanceOf(Error);
    expect((lease as PoolConnection).processId).toBe(heldPid);
    (lease as PoolConnection).release();
  });
});

describe('warm-up against a server that refuses us', () => {
  const MAX_INTERVAL_MS = 300;
  const refusals: { name: string; config: () => PoolConfigInput; secret?: string }[] = [
    { name: 'wrong password (28P01)', config: () => ({ password: WRONG_PASSWORD }), secret: WRONG_PASSWORD },
    { name: 'role without LOGIN (28000)', config: () => ({ user: noLoginRole, password: NO_LOGIN_PASSWORD }) },
    { name: 'unknown database (3D000)', config: () => ({ database: 'no_such_database_8f2d' }) },
    { name: 'TLS required, not offered', config: () => ({ sslmode: 'require' }) },
  ];

  test.each(refusals)('$name: retried every maxRetryIntervalMs, not at the base interval; the cause logged once', async (c) => {
    const p = await proxy();
    const { logger, lines } = recordingLogger();
    const started = performance.now();
    makePool(
      {
        host: '127.0.0.1',
        port: p.port,
        minConnections: 1,
        retryIntervalMs: 10,
        maxRetryIntervalMs: MAX_INTERVAL_MS,
        ...c.config(),
      },
      logger,
    );
    await expect.poll(() => p.accepted, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(3);
    // Read the count before the clock: attempt n cannot start before (n - 1) sleeps of the max interval
    // (+ slack for a timer firing a millisecond early). At the 10 ms base, 3 attempts take ~100 ms.
    const attempts = p.accepted;
    const elapsed = performance.now() - started;
    measured.push({ case: `warm-up: ${c.name}`, min: 1, ms: Math.round(elapsed), error: `${attempts} connect attempts` });
    expect(attempts).toBeLessThanOrEqual(1 + Math.floor((elapsed + 50) / MAX_INTERVAL_MS));

    const failures = lines.filter((l) => l.level === 'warn' && String(l.msg).startsWith('cannot open a connection'));
    expect(failures).toHaveLength(1);
    if (c.secret) expect(JSON.stringify(lines)).not.toContain(c.secret);
  });

  test('a transient failure (refused, reset, timeout) keeps the short exponential backoff', async () => {
    const p = await proxy({ kind: 'reset' });
    const pool = makePool({
      host: '127.0.0.1',
      port: p.port,
      minConnections: 1,
      retryIntervalMs: 10,
      maxRetryIntervalMs: 60_000,
    });
    // At a 60 s cap applied to refusals only, 4 attempts within the poll's 10 s prove the base interval is used.
    await expect.poll(() => p.accepted, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(4);
    expect(pool.stats().connectFailures).toBeGreaterThanOrEqual(3);
  });

  test('each distinct cause is logged once, until it changes or a connect succeeds', async () => {
    const p = await proxy({ kind: 'reset' });
    const { logger, lines } = recordingLogger();
    const pool = makePool(
      {
        host: '127.0.0.1',
        port: p.port,
        minConnections: 1,
        retryIntervalMs: 10,
        maxRetryIntervalMs: 50,
        connectionTimeoutMs: 200,
      },
      logger,
    );
    const logged = () =>
      lines
        .filter((l) => l.level === 'warn' && String(l.msg).startsWith('cannot open a connection'))
        .map((l) => (l.obj as { error: string }).error);

    await expect.poll(() => pool.stats().connectFailures, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(logged()).toEqual([expect.stringMatching(/ECONNRESET/)]);

    p.mode = { kind: 'blackhole' };
    const before = pool.stats().connectFailures;
    await expect.poll(() => pool.stats().connectFailures, { timeout: 10_000 }).toBeGreaterThanOrEqual(before + 2);
    expect(logged()).toEqual([expect.stringMatching(/ECONNRESET/), expect.stringMatching(/timeout/)]);

    p.mode = { kind: 'pass' };
    await expect.poll(() => pool.stats().idle, { timeout: 10_000 }).toBe(1);
    expect(lines.filter((l) => l.msg === 'connected to the database again')).toHaveLength(1);

    // After a success the same cause is news again: break the open connection and refuse the next.
    p.mode = { kind: 'reset' };
    p.resetAll();
    await expect.poll(() => logged().length, { timeout: 10_000 }).toBe(3);
    expect(logged()[2]).toMatch(/ECONNRESET/);
  });
});

describe('PoolTimeoutError tells the truth', () => {
  const refused = new DatabaseUnavailableError(
    'db.internal',
    5432,
    Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' }),
  );

  test('message variants: exhausted, connects in flight, neither; the last connect failure as cause', () => {
    const exhausted = new PoolTimeoutError({ waitedMs: 10_000, waiting: 3, max: 10, active: 10, connecting: 0 });
    expect(exhausted.message).toMatch(/^Pool exhausted: waited 10000 ms/);
    expect(exhausted.message).toContain('10/10 in use, 0 connecting, 3 waiting');
    expect(exhausted.message).not.toMatch(/slow to accept/);
    expect(exhausted.cause).toBeUndefined();

    const slow = new PoolTimeoutError({ waitedMs: 10_000, waiting: 0, max: 10, active: 2, connecting: 1 });
    expect(slow.message).toMatch(/waiting for a new connection to open \(2\/10 in use, 1 connecting, 0 waiting\)/);
    expect(slow.message).toMatch(/slow to accept connections/);

    const neither = new PoolTimeoutError({ waitedMs: 10_000, waiting: 1, max: 10, active: 2, connecting: 0 });
    expect(neither.message).toContain('2/10 in use, 0 connecting, 1 waiting');
    expect(neither.message).toMatch(/none was being opened/);
    expect(neither.message).not.toMatch(/slow to accept|exhausted/);

    const withCause = new PoolTimeoutError(
      { waitedMs: 10_000, waiting: 0, max: 10, active: 0, connecting: 1 },
      { cause: refused },
    );
    expect(withCause.cause).toBe(refused);
    expect(withCause.message).toMatch(/The last connect attempt failed: .*password authentication failed.*28P01/);
  });

  test('a connect hanging after one that failed: "slow to accept", 1 connecting, the failure as cause', async () => {
    const p = await proxy({ kind: 'reset' });
    const pool = makePool({ host: '127.0.0.1', port: p.port, minConnections: 0, connectionTimeoutMs: 10_000 });
    const failed = await pool.query('select 1').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DatabaseUnavailableError);
    p.mode = { kind: 'blackhole' };
    const err = await pool.acquire({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(err).toMatchObject({ active: 0, connecting: 1 });
    expect((err as Error).message).toMatch(/slow to accept connections/);
    expect((err as Error).cause).toBe(failed);
    expect((err as Error).message).toContain('ECONNRESET');
  });

  test('an exhausted pool with a healthy database: "exhausted", nothing connecting, no cause (a success cleared it)', async () => {
    const p = await proxy({ kind: 'reset' });
    const pool = makePool({ host: '127.0.0.1', port: p.port, minConnections: 0, maxConnections: 1 });
    expect(await pool.query('select 1').catch((e: unknown) => e)).toBeInstanceOf(DatabaseUnavailableError);
    p.mode = { kind: 'pass' };
    const held = await pool.acquire();
    const err = await pool.acquire({ timeoutMs: 200 }).catch((e: unknown) => e);
    held.release();
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(err).toMatchObject({ active: 1, max: 1, connecting: 0 });
    expect((err as Error).message).toMatch(/^Pool exhausted/);
    expect((err as Error).cause).toBeUndefined();
  });
});
