import type { Pool } from '@accountdb/pool';
import { createTestDatabase, PostgresServer, StatementCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { getDatabaseStats, getQueryStats } from '../src/index.js';
import { poolFor } from './helpers.js';

// A server of our own with pg_stat_statements preloaded (the shared test server has no preload).
let server: PostgresServer;
let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  server = await PostgresServer.create({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
  db = await createTestDatabase(server.url());
  await db.admin('create extension pg_stat_statements');
  await db.admin('create table items (id int primary key, name text)');
  pool = poolFor(db);
});
afterAll(async () => {
  await pool?.close({ force: true });
  await db?.drop();
  await server?.destroy();
});

test('top statements by total time, with the stats_reset they count from', async () => {
  for (let i = 0; i < 5; i++) await pool.query('insert into items values ($1, $2)', [i, `item ${i}`]);
  const stats = await getQueryStats(pool, { limit: 100 });
  if (!stats.available) throw new Error(stats.reason);
  const insert = stats.statements.find((s) => /insert into items/.test(s.query ?? ''));
  expect(insert).toMatchObject({ calls: 5, rows: 5, user: db.user });
  expect(insert!.totalMs).toBeGreaterThan(0);
  expect(insert!.queryId).toMatch(/^-?\d+$/);
  const version = Number((await db.admin('show server_version_num')).rows[0].server_version_num);
  if (version >= 140000) expect(stats.statsReset).toBeInstanceOf(Date);
  for (let i = 1; i < stats.statements.length; i++)
    expect(stats.statements[i - 1]!.totalMs).toBeGreaterThanOrEqual(stats.statements[i]!.totalMs);
});

test('getDatabaseStats includes them and stays within 15 statements', async () => {
  const counter = await StatementCounter.start(db.host, db.port);
  const counted = poolFor(db, { host: '127.0.0.1', port: counter.port, maxConnections: 1, validateAfterIdleMs: 3_600_000 });
  try {
    await counted.query('select 1');
    const sent = await counter.record(async () => {
      const stats = await getDatabaseStats(counted);
      expect(stats.queryStats.available).toBe(true);
    });
    console.info(`[stats] getDatabaseStats with pg_stat_statements: ${sent.length} statements`);
    expect(sent.length).toBeLessThanOrEqual(15);
  } finally {
    await counted.close({ force: true });
    counter.close();
  }
});

test('installed but not preloaded: says so instead of failing', async () => {
  const plain = await createTestDatabase();
  const p = poolFor(plain);
  try {
    await plain.admin('create extension pg_stat_statements');
    expect(await getQueryStats(p)).toEqual({ available: false, reason: expect.stringMatching(/shared_preload_libraries/) });
  } finally {
    await p.close({ force: true });
    await plain.drop();
  }
});
