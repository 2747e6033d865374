import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  AcquireAbortedError,
  createPool,
  HookError,
  type Logger,
  Pool,
  PoolClosedError,
  type PoolConfigInput,
  type PoolHooks,
  PoolTimeoutError,
} from '../src/index.js';
import { recordingLogger } from './recording-logger.js';

let db: TestDatabase;
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table items (id int primary key, name text not null)');
  await db.admin("insert into items select g, 'item ' || g from generate_series(1, 100) g");
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 2000 })));
});
afterAll(() => db.drop());

function makePool(overrides: PoolConfigInput = {}, hooks?: PoolHooks, logger?: Logger): Pool {
  const pool = createPool(
    { ...db, sslmode: 'disable', minConnections: 0, ...overrides },
    { ...(hooks ? { hooks } : {}), ...(logger ? { logger } : {}) },
  );
  pools.push(pool);
  return pool;
}

async function backendPid(pool: Pool): Promise<number> {
  return pool.withConnection(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
}

describe('acquire and release', () => {
  test('query, withConnection and acquire all run SQL and release', async () => {
    const pool = makePool();
    expect((await pool.query<{ name: string }>('select name from items where id = $1', [7])).rows[0]?.name).toBe('item 7');
    const n = await pool.withConnection(
      async (c) => (await c.query<{ n: number }>('select count(*)::int as n from items')).rows[0]?.n,
    );
    expect(n).toBe(100);
    const lease = await pool.acquire();
    expect(lease.processId).toBeGreaterThan(0);
    expect(pool.stats()).toMatchObject({ active: 1, idle: 0, total: 1 });
    lease.release();
    expect(pool.stats()).toMatchObject({ active: 0, idle: 1, total: 1 });
  });

  test('errors propagate from withConnection and the connection is released', async () => {
    const pool = makePool();
    await expect(pool.withConnection(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(pool.stats().active).toBe(0);
  });

  test('a multi-statement string that opens a transaction and fails is not reused', async () => {
    const pool = makePool({ maxConnections: 1 });
    for (let i = 0; i < 20; i++) {
      await expect(pool.query('begin; select 1/0')).rejects.toMatchObject({ code: 'DATA_EXCEPTION', sqlstate: '22012' });
      const { rows } = await pool.query<{ n: number }>('select 1 as n');
      expect(rows[0]?.n).toBe(1);
    }
    expect(pool.stats().destroyed.notIdle).toBe(20);
  });

  test('a plain SQL error does not destroy a healthy connection', async () => {
    const pool = makePool({ maxConnections: 1 });
    const pid = await backendPid(pool);
    await expect(pool.query('select * from no_such_table')).rejects.toMatchObject({ code: 'UNDEFINED_TABLE', sqlstate: '42P01' });
    await expect(pool.withConnection((c) => c.query('select 1/0'))).rejects.toMatchObject({
      code: 'DATA_EXCEPTION',
      sqlstate: '22012',
    });
    expect(await backendPid(pool)).toBe(pid);
    expect(pool.stats().destroyed).toMatchObject({ error: 0, notIdle: 0, broken: 0 });
  });

  test('a connection released mid-transaction is destroyed; the next borrower gets a clean one', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    const pid = lease.processId;
    await lease.query('begin');
    await lease.query("select set_config('app.current_user_id', '42', false)");
    await lease.query('insert into items values (1000, $1)', ['uncommitted']);
    lease.release();
    expect(pool.stats().destroyed.notIdle).toBe(1);
    await pool.withConnection(async (c) => {
      expect(c.processId).not.toBe(pid);
      const { rows } = await c.query("select current_setting('app.current_user_id', true) as v, txid_current_if_assigned() as x");
      expect(rows[0]).toEqual({ v: null, x: null });
      expect(c.client.getTransactionStatus()).toBe('I');
    });
    expect((await pool.query('select 1 from items where id = 1000')).rowCount).toBe(0);
  });

  test('a connection released inside a failed transaction is destroyed', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    await lease.query('begin');
    await expect(lease.query('select 1/0')).rejects.toThrow();
    lease.release(new Error('caller gave up'));
    await expect.poll(() => pool.stats().destroyed.notIdle).toBe(1);
    expect((await pool.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
  });

  test('releasing twice, or after destroy, is a silent no-op', async () => {
    const { logger, lines } = recordingLogger();
    const pool = makePool({}, undefined, logger);
    const lease = await pool.acquire();
    lease.release();
    lease.release();
    expect(pool.stats()).toMatchObject({ active: 0, idle: 1 });
    await expect(lease.query('select 1')).rejects.toMatchObject({ code: 'LEASE_RELEASED' });
    const destroyed = await pool.acquire();
    destroyed.destroy();
    destroyed.release(new Error('after destroy'));
    destroyed.destroy();
    await expect.poll(() => pool.stats().destroyed.released).toBe(1);
    expect(pool.stats()).toMatchObject({ active: 0 });
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });

  test('destroy() closes the connection instead of returning it', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    lease.destroy();
    expect(pool.stats()).toMatchObject({ total: 0, destroyed: expect.objectContaining({ released: 1 }) });
  });
});

describe('exhaustion and waiting', () => {
  test('an exhausted pool throws PoolTimeoutError after the acquire timeout, with numbers', async () => {
    // Open both connections first: on a loaded machine a connect alone can take longer than 300 ms.
    const pool = makePool({ minConnections: 2, maxConnections: 2, acquireTimeoutMs: 300 });
    await expect.poll(() => pool.stats().idle, { timeout: 30_000 }).toBe(2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    const started = Date.now();
    const err = await pool.acquire().catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(err).toMatchObject({ code: 'POOL_TIMEOUT', max: 2, active: 2 });
    expect((err as PoolTimeoutError).message).toMatch(/Pool exhausted: waited \d+ ms/);
    // Lower bound only: the error must not come before the timeout (no upper timing bound in tests).
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(pool.stats().acquireTimeouts).toBe(1);
    a.release();
    b.release();
  });

  test('per-call timeoutMs overrides the pool default', async () => {
    const pool = makePool({ maxConnections: 1, acquireTimeoutMs: 60_000 });
    const a = await pool.acquire();
    await expect(pool.acquire({ timeoutMs: 50 })).rejects.toBeInstanceOf(PoolTimeoutError);
    a.release();
  });

  test('waiters are served in order as connections come back', async () => {
    const pool = makePool({ maxConnections: 1 });
    const first = await pool.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((i) =>
      pool.withConnection(async () => {
        order.push(i);
      }),
    );
    expect(pool.stats().waiting).toBe(3);
    first.release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
  });

  test('an AbortSignal cancels a waiting acquire', async () => {
    const pool = makePool({ maxConnections: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const pending = pool.acquire({ signal: controller.signal });
    controller.abort(new Error('client went away'));
    await expect(pending).rejects.toBeInstanceOf(AcquireAbortedError);
    expect(pool.stats().waiting).toBe(0);
    held.release();
  });

  test('concurrency above max: every task completes, never more than max connections', async () => {
    const pool = makePool({ maxConnections: 4 });
    let peak = 0;
    pool.on('acquire', () => {
      peak = Math.max(peak, pool.stats().active);
    });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => pool.query<{ id: number }>('select id from items where id = $1', [(i % 100) + 1])),
    );
    expect(results.map((r) => r.rows[0]?.id)).toEqual(Array.from({ length: 200 }, (_, i) => (i % 100) + 1));
    expect(peak).toBeLessThanOrEqual(4);
    expect(pool.stats().total).toBeLessThanOrEqual(4);
    expect(pool.stats().acquireWaitMs.count).toBe(200);
  });
});

describe('killed backends', () => {
  test('an idle backend killed with pg_terminate_backend is dropped; the next query works', async () => {
    const pool = makePool({ maxConnections: 2 });
    const pid = await backendPid(pool);
    await db.admin('select pg_terminate_backend($1)', [pid]);
    await new Promise((r) => setTimeout(r, 100));
    const next = await backendPid(pool);
    expect(next).not.toBe(pid);
    expect(pool.stats().destroyed.broken).toBe(1);
  });

  test('an idle backend killed without the pool noticing is caught by validation', async () => {
    // validateAfterIdleMs 0 → every hand-out is checked first.
    const pool = makePool({ maxConnections: 1, validateAfterIdleMs: 0 });
    const pid = await backendPid(pool);
    await db.admin('select pg_terminate_backend($1)', [pid]);
    expect(await backendPid(pool)).not.toBe(pid);
  });

  test('an in-use backend killed mid-query: the caller gets the error, the connection is not reused', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    const pid = lease.processId;
    // The handler is attached now, before any await: the rejection may arrive while we await the admin call.
    const running = lease.query('select pg_sleep(30)').then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 200));
    await db.admin('select pg_terminate_backend($1)', [pid]);
    expect(await running).toBeInstanceOf(Error);
    lease.release();
    expect(await backendPid(pool)).not.toBe(pid);
    expect(pool.stats().destroyed.broken + pool.stats().destroyed.error).toBe(1);
  });
});

describe('lifecycle', () => {
  test('min-idle warm-up opens minConnections in the background', async () => {
    const pool = makePool({ minConnections: 3, maxConnections: 5 });
    await expect.poll(() => pool.stats().idle, { timeout: 10_000 }).toBe(3);
  });

  test('idle timeout closes connections above the minimum', async () => {
    const pool = makePool({ minConnections: 1, maxConnections: 5, idleTimeoutMs: 200 });
    await Promise.all(Array.from({ length: 4 }, () => pool.query('select pg_sleep(0.05)')));
    expect(pool.stats().total).toBeGreaterThan(1);
    await expect.poll(() => pool.stats().total, { timeout: 10_000 }).toBe(1);
    expect(pool.stats().destroyed.idleTimeout).toBeGreaterThan(0);
  });

  test('max lifetime retires connections and replaces them', async () => {
    const pool = makePool({ minConnections: 1, maxConnections: 2, maxLifetimeMs: 300 });
    const first = await backendPid(pool);
    await expect.poll(() => pool.stats().destroyed.lifetime, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await backendPid(pool)).not.toBe(first);
  });

  test('TCP keepalive is on and application_name/statement_timeout are applied', async () => {
    const pool = makePool({ applicationName: 'pool-test', statementTimeoutMs: 1234 });
    await pool.withConnection(async (c) => {
      const { rows } = await c.query<{ app: string; st: string }>(
        "select current_setting('application_name') as app, current_setting('statement_timeout') as st",
      );
      expect(rows[0]).toEqual({ app: 'pool-test', st: '1234ms' });
      const socket = (c.client as unknown as { connection: { stream: { _handle?: unknown } } }).connection.stream;
      expect(socket).toBeDefined();
    });
    const { rows } = await db.admin("select count(*)::int as n from pg_stat_activity where application_name = 'pool-test'");
    expect(rows[0].n).toBe(1);
  });

  test('leak detection logs the borrower stack', async () => {
    const { logger, lines } = recordingLogger();
    const pool = makePool({ leakDetectionThresholdMs: 50 }, undefined, logger);
    const lease = await pool.acquire();
    await expect.poll(() => lines.some((l) => String(l.msg).includes('possible leak')), { timeout: 5000 }).toBe(true);
    const line = lines.find((l) => String(l.msg).includes('possible leak'));
    expect(String((line?.obj as { stack?: string } | undefined)?.stack)).toContain('pool.test.ts');
    expect(pool.stats().leaksDetected).toBe(1);
    lease.release();
  });
});

describe('hooks', () => {
  test('onConnect runs once per connection before first use', async () => {
    let calls = 0;
    const pool = makePool(
      { maxConnections: 1 },
      {
        onConnect: async (client) => {
          calls++;
          await client.query("set application_name = 'hooked'");
        },
      },
    );
    expect((await pool.query<{ a: string }>("select current_setting('application_name') as a")).rows[0]?.a).toBe('hooked');
    await pool.query('select 1');
    expect(calls).toBe(1);
  });

  test('a connection counts once while onConnect runs: total + pending never exceeds maxConnections', async () => {
    const seen: number[] = [];
    let pool: Pool | undefined;
    pool = makePool(
      { maxConnections: 3 },
      {
        onConnect: async (client) => {
          const s = pool!.stats();
          seen.push(s.total + s.pending);
          await client.query('select 1');
        },
      },
    );
    pool.on('connect', () => {
      const s = pool!.stats();
      seen.push(s.total + s.pending);
    });
    await Promise.all(Array.from({ length: 6 }, () => pool!.query('select pg_sleep(0.05)')));
    expect(seen.length).toBe(6);
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
  });

  test('a failing onConnect surfaces a HookError and leaves no connection behind', async () => {
    const pool = makePool(
      {},
      {
        onConnect: () => {
          throw new Error('cannot prepare');
        },
      },
    );
    const err = await pool.query('select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookError);
    expect(err).toMatchObject({ hook: 'onConnect', code: 'HOOK_FAILED' });
    expect(pool.stats().total).toBe(0);
  });

  test('beforeAcquire returning false destroys that connection and hands out another', async () => {
    let rejectNext = true;
    const pool = makePool(
      { maxConnections: 2 },
      {
        beforeAcquire: () => {
          if (rejectNext) {
            rejectNext = false;
            return false;
          }
          return true;
        },
      },
    );
    const pid = await backendPid(pool);
    rejectNext = true;
    expect(await backendPid(pool)).not.toBe(pid);
    expect(pool.stats().destroyed.hook).toBe(2);
  });

  test('beforeAcquire throwing → HookError from acquire, connection destroyed', async () => {
    const pool = makePool(
      {},
      {
        beforeAcquire: () => {
          throw new Error('nope');
        },
      },
    );
    await expect(pool.acquire()).rejects.toMatchObject({ hook: 'beforeAcquire' });
    expect(pool.stats()).toMatchObject({ total: 0, active: 0 });
  });

  test('afterRelease returning false destroys; throwing emits hookError', async () => {
    let mode: 'keep' | 'drop' | 'throw' = 'drop';
    const pool = makePool(
      {},
      {
        afterRelease: () => {
          if (mode === 'throw') throw new Error('afterRelease broke');
          return mode === 'keep';
        },
      },
    );
    const hookErrors: HookError[] = [];
    pool.on('hookError', (e) => hookErrors.push(e));
    await pool.query('select 1');
    await expect.poll(() => pool.stats().destroyed.hook).toBe(1);
    mode = 'throw';
    await pool.query('select 1');
    await expect.poll(() => hookErrors.length).toBe(1);
    expect(hookErrors[0]?.hook).toBe('afterRelease');
    mode = 'keep';
    await pool.query('select 1');
    await expect.poll(() => pool.stats().idle).toBe(1);
  });
});

describe('close', () => {
  test('refuses new acquires, waits for leases, is idempotent', async () => {
    const pool = new Pool({ ...db, sslmode: 'disable', minConnections: 0 });
    const lease = await pool.acquire();
    const closing = pool.close({ timeoutMs: 5000 });
    expect(pool.close()).toBe(closing);
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    await lease.query('select 1');
    lease.release();
    await closing;
    expect(pool.stats()).toMatchObject({ total: 0 });
  });

  test('waiters are rejected; force closes leased connections at once', async () => {
    const pool = new Pool({ ...db, sslmode: 'disable', minConnections: 0, maxConnections: 1 });
    const lease = await pool.acquire();
    const waiting = pool.acquire().catch((e: unknown) => e);
    const running = lease.query('select pg_sleep(30)').catch((e: unknown) => e);
    await pool.close({ force: true });
    expect(await waiting).toBeInstanceOf(PoolClosedError);
    expect(await running).toBeInstanceOf(Error);
    const { rows } = await db.admin(
      'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [db.database],
    );
    // Only the harness's own admin connection may remain.
    expect(rows[0].n).toBeLessThanOrEqual(1);
  });

  test('timeoutMs elapses, then leased connections are closed', async () => {
    const pool = new Pool({ ...db, sslmode: 'disable', minConnections: 0 });
    await pool.acquire();
    await pool.close({ timeoutMs: 100 });
    expect(pool.stats().total).toBe(0);
  });
});

describe('secrets', () => {
  test('the password never reaches the logs, errors, stats or inspection', async () => {
    const role = await db.createRestrictedRole();
    const { logger, lines } = recordingLogger();
    const pool = makePool({ user: role.user, password: role.password, leakDetectionThresholdMs: 10 }, undefined, logger);
    await pool.query('select 1');
    const lease = await pool.acquire();
    await new Promise((r) => setTimeout(r, 50));
    lease.release();
    const bad = makePool({ user: role.user, password: `${role.password}-wrong`, maxRetries: 0 }, undefined, logger);
    const err = await bad.query('select 1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    const everything = JSON.stringify({
      lines,
      stats: pool.stats(),
      config: pool.config,
      err: String(err),
      stack: (err as Error).stack,
    });
    expect(everything).not.toContain(role.password);
    expect(Object.keys(pool.config)).not.toContain('password');
  });

  test('query parameters are not logged', async () => {
    const { logger, lines } = recordingLogger();
    const pool = makePool({}, undefined, logger);
    await pool.query('select $1::text', ['param-value-1234']).catch(() => {});
    await pool.query('select $1::int', ['not-an-int-5678']).catch(() => {});
    expect(JSON.stringify(lines)).not.toMatch(/param-value-1234|not-an-int-5678/);
  });
});
