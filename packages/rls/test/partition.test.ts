import { AccountDbError, ConnectionLostError, isTransientConnectionError, type Pool } from '@accountdb/pool';
import { TcpProxy } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRls } from '../src/index.js';
import { createFixture, type Fixture, rowsOf, viaPgBouncer } from './fixture.js';

// The network between the app and its server (PgBouncer when the run goes through it) goes silent:
// a proxy black-holes every byte both ways and keeps the sockets open. The margin is an allowance for
// a loaded machine, not a timing measurement.
const MARGIN_MS = 2000;
const rls = createRls({ roles: ['user'] });

let fx: Fixture;
let proxy: TcpProxy;
let pool: Pool;

beforeAll(async () => {
  fx = await createFixture();
  proxy = await TcpProxy.start(fx.target.host, fx.target.port);
  pool = fx.pool(2, undefined, {
    host: '127.0.0.1',
    port: proxy.port,
    connectionTimeoutMs: 1000,
    acquireTimeoutMs: 2000,
    queryTimeoutMs: 1000,
  });
  console.info(`[rls] partition tests ${viaPgBouncer ? 'through PgBouncer (transaction pooling)' : 'direct to PostgreSQL'}`);
});
afterAll(async () => {
  await proxy?.close();
  await fx?.close();
});

function timed(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  return promise.then(
    () => ({ error: undefined, ms: performance.now() - started }),
    (error: unknown) => ({ error, ms: performance.now() - started }),
  );
}

/** `err` and its chain of causes. */
function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

const notesOf = (userId: number) =>
  rls.query<{ n: number }>(pool, { userId, role: 'user' }, 'select count(*)::int as n from notes').then((r) => r.rows[0]?.n);

describe('a user-context request when the network goes silent', () => {
  test('rls.query and withUserContext end with a typed error within their bound, and serve again after healing', async () => {
    expect(await notesOf(3)).toBe(rowsOf(3));
    const lease = await pool.acquire();
    lease.release();
    proxy.mode = { kind: 'blackhole' };
    const outcomes = await Promise.all([
      timed(notesOf(1)),
      timed(rls.withUserContext(pool, { userId: 2, role: 'user' }, (tx) => tx.query('select count(*) from notes'))),
      timed(notesOf(4)),
    ]);
    for (const { error, ms } of outcomes) {
      expect(AccountDbError.is(error)).toBe(true);
      expect(isTransientConnectionError(error) || (error as AccountDbError).code === 'POOL_TIMEOUT').toBe(true);
      expect(ms).toBeLessThan(2000 + 1000 + MARGIN_MS);
    }
    // At least one request met the silence on a connection it already had.
    // (rls reports it as the cause of its RlsScopeError.)
    expect(outcomes.some((o) => causes(o.error).some((e) => e instanceof ConnectionLostError))).toBe(true);
    proxy.mode = { kind: 'pass' };
    await expect.poll(() => notesOf(5).catch(() => -1), { timeout: 5000, interval: 100 }).toBe(rowsOf(5));
    expect(pool.stats().total).toBeLessThanOrEqual(2);
    console.info(`[rls partition] ${JSON.stringify(outcomes.map((o) => [(o.error as AccountDbError).code, Math.round(o.ms)]))}`);
  });
});
