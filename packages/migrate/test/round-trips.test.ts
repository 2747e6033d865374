import { createPool, type Pool } from '@accountdb/pool';
import { RoundTripCounter, testPoolConfig } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runMigrations } from '../src/index.js';
import { createFixture, type Fixture, uniqueName } from './fixture.js';

// Counted on the wire, not trusted from the code: a relay counts each client→server burst on one open connection.
let fx: Fixture;
let counter: RoundTripCounter;
let pool: Pool;
beforeAll(async () => {
  fx = await createFixture();
  counter = await RoundTripCounter.start(fx.db.host, fx.db.port);
  pool = createPool(
    testPoolConfig(fx.db, { host: '127.0.0.1', port: counter.port, maxConnections: 1, validateAfterIdleMs: 3_600_000 }),
  );
  await pool.query('SELECT 1');
});
afterAll(async () => {
  await pool?.close();
  counter?.close();
  await fx?.close();
});

test('a transactional migration is one round trip (BEGIN, statements, history row and COMMIT in one flight)', async () => {
  const rows = (n: number) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`${String(i + 1).padStart(4, '0')}_m.sql`, `SELECT ${i};\nSELECT 'two statements';`]),
    );
  const [one, four] = [await fx.dir(rows(1)), await fx.dir(rows(4))];
  // Same fixed cost (lock, history table, reads, timeouts, unlock) in both runs: the difference is per migration.
  const a = await counter.count(() => runMigrations(pool, { dir: one, table: uniqueName('hist') }));
  const b = await counter.count(() => runMigrations(pool, { dir: four, table: uniqueName('hist') }));
  expect(b - a).toBe(3);
  // With a header's own timeouts the SET LOCAL rides in the same flight.
  const header = await fx.dir({ ...rows(4), '0005_m.sql': '-- migrate:lock-timeout=2s\nSELECT 5;' });
  const t = uniqueName('hist');
  await runMigrations(pool, { dir: four, table: t });
  const c = await counter.count(() => runMigrations(pool, { dir: header, table: t }));
  const d = await counter.count(() => runMigrations(pool, { dir: header, table: t }));
  expect(c - d).toBe(3); // 1 for the migration, 2 for setting and resetting the run's timeouts around it
});
