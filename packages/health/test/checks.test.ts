import { ConfigError, type Pool } from '@accountdb/pool';
import { createTestDatabase, type TestDatabase, waitFor } from '@accountdb/test-db';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  checkConnectionHealth,
  checkDatabaseHealth,
  checkHealth,
  checkPoolHealth,
  checkQueryPerformance,
  createHealthHandler,
} from '../src/index.js';
import { entry, poolFor } from './helpers.js';

// These tests are about what the checks report, not about their deadlines (faults.test.ts tests those):
// a generous bound, so a first connect on a loaded machine cannot turn a threshold test into a timeout.
const RELAXED = { timeoutMs: 30_000 } as const;

let db: TestDatabase;
const pools: Pool[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table t (id int primary key)');
  await db.admin('insert into t values (1)');
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});
afterAll(() => db?.drop());

function pool(extra = {}): Pool {
  const p = poolFor(db, extra);
  pools.push(p);
  return p;
}

async function adminClient(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: db.url });
  c.on('error', () => {});
  clients.push(c);
  await c.connect();
  return c;
}

describe('misuse throws before any SQL', () => {
  test('bad options: one ConfigError listing every problem, no acquire', async () => {
    const p = pool();
    const err = await checkHealth(p, {
      timeoutMs: 0,
      cacheTtlMs: -1,
      database: { expect: 'leader' as never, xidAge: { warn: 10, fail: 5 }, blockedSessions: { warn: -1 } },
      pool: { waiting: 'many' as never },
      bogus: 1,
    } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const variables = (err as ConfigError).problems.map((x) => x.variable);
    expect(variables).toEqual(
      expect.arrayContaining([
        'timeoutMs',
        'cacheTtlMs',
        'database.expect',
        'database.xidAge',
        'database.blockedSessions.warn',
        'pool.waiting',
        'options.bogus',
      ]),
    );
    expect(p.stats().acquires).toBe(0);
    expect(() => checkPoolHealth(p, { utilizationPercent: { warn: 'x' as never } })).toThrow(ConfigError);
    await expect(checkDatabaseHealth({} as never, RELAXED)).rejects.toBeInstanceOf(ConfigError);
    await expect(checkQueryPerformance(p, { ...RELAXED, query: '' })).rejects.toBeInstanceOf(ConfigError);
    expect(() => createHealthHandler(p, { startup: 'yes' as never })).toThrow(ConfigError);
    expect(p.stats().acquires).toBe(0);
  });
});

describe('checks on a healthy database', () => {
  test('checkConnectionHealth on a pool, a lease and a client: pass with a response time', async () => {
    const p = pool();
    const viaPool = await checkConnectionHealth(p, RELAXED);
    expect(viaPool.status).toBe('pass');
    expect(entry(viaPool, 'postgresql:responseTime')).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    const lease = await p.acquire();
    try {
      expect((await checkConnectionHealth(lease, RELAXED)).status).toBe('pass');
    } finally {
      lease.release();
    }
    const client = await adminClient();
    expect((await checkConnectionHealth(client, { ...RELAXED, timeoutMs: 5000 })).status).toBe('pass');
  });

  test('checkHealth: one health+json document with every default check', async () => {
    const p = pool();
    // Time thresholds off: this test is about shape, and a loaded machine can slow a cold connect.
    const doc = await checkHealth(p, {
      ...RELAXED,
      database: { expect: 'primary' },
      connection: { responseTimeMs: { warn: null } },
      pool: { acquireWaitP99Ms: { warn: null, fail: null } },
    });
    console.log('checkHealth document:', JSON.stringify(doc));
    expect(doc.status).toBe('pass');
    expect(Object.keys(doc.checks).sort()).toEqual(
      [
        'pool:acquireWait',
        'pool:connectFailures',
        'pool:timeouts',
        'pool:utilization',
        'pool:waiting',
        'postgresql:blockedSessions',
        'postgresql:connections',
        'postgresql:idleInTransaction',
        'postgresql:inactiveReplicationSlots',
        'postgresql:longestTransaction',
        'postgresql:multixactAge',
        'postgresql:responseTime',
        'postgresql:role',
        'postgresql:xidAge',
      ].sort(),
    );
    for (const list of Object.values(doc.checks))
      for (const check of list) {
        expect(check.status).toBe('pass');
        expect(Number.isNaN(Date.parse(check.time))).toBe(false);
        expect(check).toHaveProperty('observedValue');
      }
    expect(entry(doc, 'postgresql:role').observedValue).toBe('primary');
    // The database statement is the document's only round trip.
    expect(p.stats().acquires).toBe(1);
  });

  test('checkPoolHealth counts acquire timeouts since the previous check', async () => {
    const p = pool({ maxConnections: 1 });
    checkPoolHealth(p);
    const held = await p.acquire();
    const timedOut = p.acquire({ timeoutMs: 20 }).catch((e: unknown) => e);
    await timedOut;
    const doc = checkPoolHealth(p);
    expect(entry(doc, 'pool:timeouts')).toMatchObject({ status: 'warn', observedValue: 1 });
    expect(entry(doc, 'pool:timeouts').output).toContain('timeouts.warn');
    expect(entry(doc, 'pool:utilization')).toMatchObject({ status: 'warn', observedValue: 100 });
    held.release();
    expect(entry(checkPoolHealth(p), 'pool:timeouts')).toMatchObject({ status: 'pass', observedValue: 0 });
  });

  test('checkQueryPerformance: a probe against thresholds; a failing probe reveals neither text nor values', async () => {
    const p = pool();
    const ok = await checkQueryPerformance(p, { ...RELAXED, query: { text: 'select id from t where id = $1', values: [1] } });
    expect(entry(ok, 'postgresql:queryTime')).toMatchObject({ status: 'pass', observedUnit: 'ms' });
    const slow = await checkQueryPerformance(p, { ...RELAXED, query: 'select pg_sleep(0.05)', queryTimeMs: { warn: 1 } });
    expect(entry(slow, 'postgresql:queryTime').status).toBe('warn');
    expect(entry(slow, 'postgresql:queryTime').output).toContain('queryTimeMs.warn');
    const bad = await checkQueryPerformance(p, { ...RELAXED, query: { text: 'select $1::int', values: ['hunter2-secret'] } });
    expect(bad.status).toBe('fail');
    const json = JSON.stringify(bad);
    expect(json).toContain('22P02');
    expect(json).not.toContain('hunter2-secret');
    expect(json).not.toContain('select');
  });
});

describe('database checks with thresholds set low on purpose', () => {
  test('wraparound: XID and MultiXact age name their thresholds', async () => {
    const p = pool();
    const doc = await checkDatabaseHealth(p, { ...RELAXED, xidAge: { warn: 0 }, multixactAge: { warn: 0, fail: 0 } });
    expect(entry(doc, 'postgresql:xidAge')).toMatchObject({ status: 'warn', observedUnit: 'transactions' });
    expect(entry(doc, 'postgresql:xidAge').output).toMatch(
      />= warn threshold 0 transactions \(xidAge\.warn\); wraparound at 2,147,483,648/,
    );
    expect(entry(doc, 'postgresql:multixactAge').status).toBe('fail');
    expect(entry(doc, 'postgresql:multixactAge').output).toContain('multixactAge.fail');
    expect(doc.status).toBe('fail');
  });

  test('long-running transaction, idle in transaction and a blocked session', async () => {
    const holder = await adminClient();
    const waiter = await adminClient();
    await holder.query('begin');
    await holder.query('lock table t in access exclusive mode');
    // The waiter blocks on the lock; its promise gets its handler now.
    const blocked = waiter.query('select * from t').then(
      () => 'done',
      () => 'failed',
    );
    await waitFor(async () => {
      const { rows } = await db.admin(
        `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = $1`,
        [db.database],
      );
      return rows[0].n >= 1;
    });
    // The holder's transaction started before now(); wait until the server sees it as older than 1 s.
    await new Promise((r) => setTimeout(r, 1100));
    const doc = await checkDatabaseHealth(pool(), {
      ...RELAXED,
      longTransactionSeconds: { warn: 1 },
      idleInTransactionSeconds: { warn: 1 },
      blockedSessions: { warn: 1 },
    });
    console.log('low thresholds:', JSON.stringify(doc.checks, null, 0));
    expect(entry(doc, 'postgresql:longestTransaction').status).toBe('warn');
    expect(entry(doc, 'postgresql:longestTransaction').output).toContain('longTransactionSeconds.warn');
    expect(entry(doc, 'postgresql:idleInTransaction').status).toBe('warn');
    expect(entry(doc, 'postgresql:idleInTransaction').output).toContain('idleInTransactionSeconds.warn');
    expect(entry(doc, 'postgresql:blockedSessions')).toMatchObject({ status: 'warn', observedValue: 1 });
    expect(entry(doc, 'postgresql:blockedSessions').output).toContain('blockedSessions.warn');
    await holder.query('rollback');
    expect(await blocked).toBe('done');
  });

  test('a read-only server where a primary is expected: fail; with expect any: pass', async () => {
    // A database whose sessions are read-only stands in for a server that is not writable: the check
    // reads transaction_read_only as the client sees it (a real standby is covered by pg_is_in_recovery()).
    const ro = await createTestDatabase();
    try {
      await ro.admin(`alter database ${pg.escapeIdentifier(ro.database)} set default_transaction_read_only = on`);
      const p = poolFor(ro);
      pools.push(p);
      const doc = await checkDatabaseHealth(p, { ...RELAXED, expect: 'primary' });
      expect(entry(doc, 'postgresql:role')).toMatchObject({ status: 'fail', observedValue: 'read-only' });
      expect(entry(doc, 'postgresql:role').output).toBe('server is read-only, expected primary (expect)');
      expect(doc.status).toBe('fail');
      expect((await checkDatabaseHealth(p, { ...RELAXED, expect: 'any' })).status).toBe('pass');
      expect(entry(await checkDatabaseHealth(p, { ...RELAXED, expect: 'standby' }), 'postgresql:role').status).toBe('fail');
    } finally {
      await Promise.all(pools.splice(0).map((x) => x.close({ force: true })));
      await ro.drop();
    }
  });

  test('as a non-superuser: works, activity checks say they are partial; with pg_monitor they are not', async () => {
    const role = await db.createRestrictedRole();
    const p = pool({ user: role.user, password: role.password });
    const doc = await checkDatabaseHealth(p, RELAXED);
    console.log('restricted role:', JSON.stringify(doc.checks));
    expect(doc.status).toBe('pass');
    expect(entry(doc, 'postgresql:longestTransaction').output).toContain('pg_monitor');
    expect(entry(doc, 'postgresql:connections').output).toContain('approximate');
    expect(typeof entry(doc, 'postgresql:xidAge').observedValue).toBe('number');
    await db.admin(`grant pg_monitor to ${pg.escapeIdentifier(role.user)}`);
    const monitored = await checkDatabaseHealth(p, RELAXED);
    expect(monitored.status).toBe('pass');
    expect(entry(monitored, 'postgresql:longestTransaction').output).toBeUndefined();
    expect(entry(monitored, 'postgresql:connections').output).toBeUndefined();
    const json = JSON.stringify([doc, monitored]);
    expect(json).not.toContain(role.password);
    expect(json).not.toContain(db.password);
  });
});
