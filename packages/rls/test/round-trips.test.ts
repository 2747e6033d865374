import { createPool, type Pool } from '@accountdb/pool';
import { RoundTripCounter, testPoolConfig } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRls } from '../src/index.js';
import { createFixture, type Fixture, throughPgBouncer } from './fixture.js';

let fx: Fixture;
let counter: RoundTripCounter;
let pool: Pool;
beforeAll(async () => {
  fx = await createFixture();
  counter = await RoundTripCounter.start(fx.target.host, fx.target.port);
  // One connection, never re-validated, so only the statements under test cross the wire.
  pool = createPool(
    testPoolConfig(fx.app, {
      host: '127.0.0.1',
      port: counter.port,
      maxConnections: 1,
      validateAfterIdleMs: 3_600_000,
      ...throughPgBouncer,
    }),
  );
  await pool.query('select 1');
});
afterAll(async () => {
  await pool?.close({ force: true });
  counter?.close();
  await fx?.close();
});

const ctx = { userId: 3, role: 'user' };

test('a plain query is one round trip (the yardstick)', async () => {
  expect(await counter.count(() => pool.query('select * from notes where id = $1', [1]))).toBe(1);
});

test('rls.query is one round trip, including when the statement fails', async () => {
  const rls = createRls({ roles: ['user'] });
  expect(await counter.count(() => rls.query(pool, ctx, 'select * from notes where id = $1', [1]))).toBe(1);
  expect(await counter.count(() => rls.query(pool, ctx, 'select 1 / 0'))).toBe(1);
});

test("withUserContext: BEGIN and the context travel with fn's first statement; COMMIT is the second trip", async () => {
  const rls = createRls({ roles: ['user'] });
  expect(
    await counter.count(() => rls.withUserContext(pool, ctx, (tx) => tx.query('select * from notes where id = $1', [1]))),
  ).toBe(2);
  // Also when the first statement is a named config.
  const named = { name: 'note-by-id', text: 'select * from notes where id = $1', values: [1] };
  expect(await counter.count(() => rls.withUserContext(pool, ctx, (tx) => tx.query(named)))).toBe(2);
  // rls.query with a named statement: still one round trip (the parse travels in the same flight).
  expect(await counter.count(() => rls.query(pool, ctx, named))).toBe(1);
  expect(await counter.count(() => rls.query(pool, ctx, named))).toBe(1);
  // A statement fn issues after the first one completes is a round trip of its own, as without RLS.
  expect(
    await counter.count(() =>
      rls.withUserContext(pool, ctx, async (tx) => {
        await tx.query('select 1');
        await tx.query('select 2');
      }),
    ),
  ).toBe(3);
});

test('rls.query with isolation or read-only (explicit BEGIN … COMMIT in the batch) is still one round trip', async () => {
  const rls = createRls({ roles: ['user'] });
  const options = { readOnly: true, isolation: 'repeatable read' as const };
  expect(await counter.count(() => rls.query(pool, ctx, 'select * from notes where id = $1', [1], options))).toBe(1);
  // The failure path of an explicit transaction needs its ROLLBACK: one more trip, errors only.
  expect(await counter.count(() => rls.query(pool, ctx, 'select 1 / 0', undefined, options))).toBe(2);
  expect(await counter.count(() => pool.query('select 1'))).toBe(1);
});
