import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, FeatureNotSupportedError, LockNotAvailableError as PoolLockNotAvailableError } from '@accountdb/pool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ActiveTransactionError,
  analyzeTable,
  cleanupDatabase,
  InsufficientPrivilegeError,
  LockNotAvailableError,
  MaintenanceInputError,
  reindexIndex,
  reindexTable,
  truncateTable,
  UnsupportedOptionError,
  type VacuumOptions,
  vacuumTable,
} from '../src/index.js';
import {
  createFixture,
  type Fixture,
  holdInTransaction,
  maintenanceStatements,
  recordingPool,
  relfilenode,
  stat,
} from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
  await fx.db.admin(`
    create table items (id int generated always as identity primary key, body text) with (autovacuum_enabled = false);
    insert into items (body) select repeat('x', 100) from generate_series(1, 2000);
    create index items_body on items (body);
    create table parent (id int primary key);
    create table child (parent_id int references parent);
    insert into parent values (1); insert into child values (1);`);
});
afterAll(() => fx?.close());

// Each option with the first major version that has it.
const OPTIONS: [VacuumOptions, number][] = [
  [{ freeze: true }, 13],
  [{ verbose: true }, 13],
  [{ analyze: true }, 13],
  [{ disablePageSkipping: true }, 13],
  [{ skipLocked: true }, 13],
  [{ indexCleanup: false }, 13],
  [{ indexCleanup: 'auto' }, 14],
  [{ processToast: false }, 14],
  [{ truncate: false }, 13],
  [{ parallel: 2 }, 13],
  [{ processMain: false }, 16],
  [{ skipDatabaseStats: true }, 16],
  [{ bufferUsageLimitKb: 256 }, 16],
  [{ full: true }, 13],
];

describe('every VACUUM option', () => {
  for (const [options, since] of OPTIONS) {
    test(`${JSON.stringify(options)} runs on ${since}+ and is refused before sending on older servers`, async () => {
      const { db, sent } = recordingPool(fx.pool);
      if (fx.serverVersion >= since * 10000) {
        const before = ((await stat(fx.db, 'items')).vacuums as number) + 0;
        const result = await vacuumTable(db, 'items', options);
        expect(result.status).toBe('done');
        expect(maintenanceStatements(sent)).toEqual([result.sql]);
        // VACUUM FULL is a rewrite (counted elsewhere); PROCESS_MAIN false vacuums only the TOAST table.
        if (!options.full && options.processMain !== false) expect((await stat(fx.db, 'items')).vacuums).toBe(before + 1);
      } else {
        const error = await vacuumTable(db, 'items', options).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnsupportedOptionError);
        expect((error as UnsupportedOptionError).requiredVersion).toBe(since);
        expect(maintenanceStatements(sent)).toEqual([]);
        expect(sent).toHaveLength(1); // the lookup that read server_version_num
      }
    });
  }
});

test('VACUUM FULL rewrites the table (new relfilenode); plain VACUUM does not', async () => {
  const before = await relfilenode(fx.db, 'items');
  await vacuumTable(fx.pool, 'items');
  expect(await relfilenode(fx.db, 'items')).toBe(before);
  const result = await vacuumTable(fx.pool, 'items', { full: true, analyze: true });
  expect(result.sql).toBe('VACUUM (FULL TRUE, ANALYZE TRUE) public.items');
  expect(await relfilenode(fx.db, 'items')).not.toBe(before);
});

test('ANALYZE updates last_analyze; BUFFER_USAGE_LIMIT is gated on 16', async () => {
  await analyzeTable(fx.pool, 'items', { skipLocked: true });
  expect((await stat(fx.db, 'items')).last_analyze).not.toBeNull();
  const limited = analyzeTable(fx.pool, 'items', { bufferUsageLimitKb: 256 });
  if (fx.serverVersion >= 160000) expect((await limited).sql).toBe('ANALYZE (BUFFER_USAGE_LIMIT 256) public.items');
  else await expect(limited).rejects.toMatchObject({ code: 'MAINTENANCE_UNSUPPORTED_OPTION', requiredVersion: 16 });
});

test('REINDEX rebuilds: CONCURRENTLY by default, blocking only when asked; both give new relfilenodes', async () => {
  const index = await relfilenode(fx.db, 'items_body');
  const r1 = await reindexIndex(fx.pool, 'items_body');
  expect(r1.sql).toBe('REINDEX INDEX CONCURRENTLY public.items_body');
  const afterConcurrent = await relfilenode(fx.db, 'items_body');
  expect(afterConcurrent).not.toBe(index);
  const pkey = await relfilenode(fx.db, 'items_pkey');
  const r2 = await reindexTable(fx.pool, 'items', { concurrently: false });
  expect(r2.sql).toBe('REINDEX TABLE public.items');
  expect(await relfilenode(fx.db, 'items_pkey')).not.toBe(pkey);
  expect(await relfilenode(fx.db, 'items_body')).not.toBe(afterConcurrent);
  const { rows } = await fx.db.admin(
    `select count(*)::int as n from pg_index where indrelid = 'items'::regclass and not indisvalid`,
  );
  expect(rows[0].n).toBe(0);
});

test('REINDEX TABLESPACE (14+): the name is resolved through pg_tablespace and quoted from the catalog', async () => {
  // The server writes into the directory: give it to the data directory's owner.
  const dataDir = (await fx.db.admin(`select current_setting('data_directory') as d`)).rows[0].d as string;
  const dir = mkdtempSync(join(tmpdir(), 'accountdb-ts-'));
  chownSync(dir, statSync(dataDir).uid, statSync(dataDir).gid);
  const name = `Fast "ts"; ${process.pid}`; // tablespaces are cluster-wide
  const quoted = `"${name.replaceAll('"', '""')}"`;
  await fx.db.admin(`create tablespace ${quoted} location '${dir}'`);
  const where = async (index: string) =>
    (
      await fx.db.admin(
        `select coalesce(t.spcname, 'default') as s from pg_class c left join pg_tablespace t on t.oid = c.reltablespace where c.oid = $1::regclass`,
        [index],
      )
    ).rows[0].s;
  try {
    const { db, sent } = recordingPool(fx.pool);
    const r1 = await reindexIndex(db, 'items_body', { tablespace: name });
    expect(r1.sql).toBe(`REINDEX (TABLESPACE ${quoted}) INDEX CONCURRENTLY public.items_body`);
    expect(maintenanceStatements(sent)).toEqual([r1.sql]);
    expect(await where('items_body')).toBe(name);
    const r2 = await reindexTable(fx.pool, 'items', { tablespace: 'pg_default', concurrently: false, verbose: true });
    expect(r2.sql).toBe('REINDEX (VERBOSE, TABLESPACE pg_default) TABLE public.items');
    expect(await where('items_body')).toBe('default');
    sent.length = 0;
    await expect(reindexIndex(db, 'items_body', { tablespace: 'nowhere' })).rejects.toMatchObject({
      code: 'MAINTENANCE_INVALID_INPUT',
      field: 'tablespace',
    });
    await expect(reindexIndex(db, 'items_body', { tablespace: 'x'.repeat(64) })).rejects.toMatchObject({ field: 'tablespace' });
    expect(maintenanceStatements(sent)).toEqual([]);
    // A role that may maintain the table but not create in the tablespace: refused before sending.
    const role = await fx.db.createRestrictedRole();
    await fx.db.admin(`create table role_t (id int primary key); alter table role_t owner to ${role.user}`);
    const pool = createPool({ ...role, minConnections: 0, maxConnections: 1 });
    try {
      await expect(reindexTable(pool, 'role_t', { tablespace: name })).rejects.toMatchObject({
        code: 'INSUFFICIENT_PRIVILEGE',
        sqlstate: '42501',
      });
      expect((await reindexTable(pool, 'role_t', { tablespace: 'pg_default' })).status).toBe('done');
    } finally {
      await pool.close({ force: true });
    }
  } finally {
    await fx.db.admin(`drop tablespace if exists ${quoted}`);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TRUNCATE: RESTART IDENTITY and CASCADE only when asked', async () => {
  await fx.db.admin(`create table seq_t (id int generated always as identity, v int); insert into seq_t (v) values (1), (2)`);
  await truncateTable(fx.pool, 'seq_t');
  await fx.db.admin('insert into seq_t (v) values (3)');
  expect((await fx.db.admin('select id from seq_t')).rows[0].id).toBe(3);
  await truncateTable(fx.pool, 'seq_t', { restartIdentity: true });
  await fx.db.admin('insert into seq_t (v) values (4)');
  expect((await fx.db.admin('select id from seq_t')).rows[0].id).toBe(1);
  // Without cascade a referenced table cannot be truncated; the server's error is pool's class for it.
  await expect(truncateTable(fx.pool, 'parent')).rejects.toSatisfy(
    (e) => e instanceof FeatureNotSupportedError && e.sqlstate === '0A000',
  );
  expect((await fx.db.admin('select count(*)::int as n from child')).rows[0].n).toBe(1);
  await truncateTable(fx.pool, 'parent', { cascade: true });
  expect((await fx.db.admin('select count(*)::int as n from child')).rows[0].n).toBe(0);
});

test('a table locked by another session: SKIP_LOCKED skips it, lock_timeout fails fast with a typed error, not a hang', async () => {
  const holder = await holdInTransaction(fx.db, ['lock table items in access exclusive mode']);
  try {
    const before = (await stat(fx.db, 'items')).vacuums;
    const skipped = await vacuumTable(fx.pool, 'items', { skipLocked: true });
    expect(skipped.status).toBe('skipped');
    expect((await analyzeTable(fx.pool, 'items', { skipLocked: true })).status).toBe('skipped');
    const error = await vacuumTable(fx.pool, 'items', { lockTimeoutMs: 200 }).catch((e: unknown) => e);
    // Pool's class, whichever package it is imported from.
    expect(LockNotAvailableError).toBe(PoolLockNotAvailableError);
    expect(error).toBeInstanceOf(PoolLockNotAvailableError);
    expect(error).toMatchObject({ code: 'LOCK_NOT_AVAILABLE', sqlstate: '55P03' });
    await expect(truncateTable(fx.pool, 'items', { lockTimeoutMs: 200 })).rejects.toBeInstanceOf(LockNotAvailableError);
    expect((await stat(fx.db, 'items')).vacuums).toBe(before);
  } finally {
    await holder.release();
  }
  // The lease went back with the pool's own settings restored.
  const { rows } = await fx.pool.query(`select current_setting('lock_timeout') as lock`);
  expect(rows[0]?.lock).toBe('0');
});

test('a failed REINDEX CONCURRENTLY does not leave an invalid index behind: it is dropped, or reported when asked to keep it', async () => {
  await fx.db.admin('create table other (id int); insert into other values (1)');
  const invalid = async () =>
    (
      await fx.db.admin(
        `select c.relname from pg_index x join pg_class c on c.oid = x.indexrelid where x.indrelid = 'items'::regclass and not x.indisvalid`,
      )
    ).rows.map((r) => r.relname as string);
  // An older snapshot makes REINDEX CONCURRENTLY wait after building the new index; lock_timeout ends that wait.
  for (const dropInvalidOnFailure of [true, false]) {
    const holder = await holdInTransaction(fx.db, ['set transaction isolation level repeatable read', 'select * from other']);
    let error: unknown;
    try {
      error = await reindexIndex(fx.pool, 'items_body', { lockTimeoutMs: 300, dropInvalidOnFailure }).catch((e: unknown) => e);
    } finally {
      await holder.release();
    }
    expect(error).toBeInstanceOf(LockNotAvailableError);
    const leftovers = (error as { leftovers?: string[] }).leftovers;
    expect(leftovers?.length).toBeGreaterThan(0);
    expect((error as { dropped?: boolean }).dropped).toBe(dropInvalidOnFailure);
    expect(await invalid()).toEqual(dropInvalidOnFailure ? [] : leftovers?.map((n) => n.replace(/^public\./, '')));
  }
  for (const name of await invalid()) await fx.db.admin(`drop index "${name}"`);
  // The same failure inside cleanupDatabase: the step is reported, its leftovers are dropped.
  const relationId = Number((await fx.db.admin(`select 'items_body'::regclass::oid::int8 as o`)).rows[0].o);
  const plan = {
    serverVersion: fx.serverVersion,
    bloatSource: 'estimate' as const,
    steps: [{ action: 'reindex' as const, relation: 'public.items_body', relationId, reason: 'test', numbers: {}, sql: '' }],
  };
  const holder = await holdInTransaction(fx.db, ['set transaction isolation level repeatable read', 'select * from other']);
  let report: Awaited<ReturnType<typeof cleanupDatabase>>;
  try {
    report = await cleanupDatabase(fx.pool, { plan, lockTimeoutMs: 300 });
  } finally {
    await holder.release();
  }
  expect(report.results[0]).toMatchObject({
    status: 'skipped',
    skipReason: 'locked',
    sql: 'REINDEX INDEX CONCURRENTLY public.items_body',
  });
  expect(report.results[0]?.error).toBeInstanceOf(LockNotAvailableError);
  expect(report.results[0]?.error).toMatchObject({
    code: 'LOCK_NOT_AVAILABLE',
    sqlstate: '55P03',
    dropped: true,
    leftovers: [expect.stringMatching(/^public\.items_body_ccnew/)],
  });
  expect(await invalid()).toEqual([]);
});

test('VACUUM and REINDEX CONCURRENTLY refuse a lease inside a transaction before sending; ANALYZE and TRUNCATE run in it', async () => {
  const lease = await fx.pool.acquire();
  try {
    await lease.query('begin');
    for (const refused of [() => vacuumTable(lease, 'items'), () => reindexIndex(lease, 'items_body')])
      await expect(refused()).rejects.toSatisfy(
        (e) => e instanceof ActiveTransactionError && e.code === 'ACTIVE_TRANSACTION' && e.sqlstate === '25001',
      );
    expect((await analyzeTable(lease, 'items')).status).toBe('done');
    await truncateTable(lease, 'seq_t');
    expect(lease.client.getTransactionStatus()).toBe('T');
    await lease.query('rollback');
    // SET LOCAL inside the transaction: nothing leaks past it.
    expect((await lease.query(`select current_setting('lock_timeout') as l`)).rows[0]?.l).toBe('0');
  } finally {
    lease.release();
  }
});

test('a role that does not own the table gets a typed error before the statement is sent', async () => {
  const role = await fx.db.createRestrictedRole();
  await fx.db.admin(`grant select on items to ${role.user}`);
  const pool = createPool({ ...role, minConnections: 0, maxConnections: 2 });
  try {
    const { db, sent } = recordingPool(pool);
    for (const run of [
      () => vacuumTable(db, 'items'),
      () => analyzeTable(db, 'items'),
      () => reindexTable(db, 'items'),
      () => truncateTable(db, 'items'),
    ]) {
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InsufficientPrivilegeError);
      expect(error).toMatchObject({ code: 'INSUFFICIENT_PRIVILEGE', sqlstate: '42501' });
      expect((error as Error).message).toContain('public.items');
    }
    expect(maintenanceStatements(sent)).toEqual([]);
    if (fx.serverVersion >= 170000) {
      // PostgreSQL 17's MAINTAIN privilege is enough.
      await fx.db.admin(`grant maintain on items to ${role.user}`);
      expect((await vacuumTable(pool, 'items')).status).toBe('done');
    }
  } finally {
    await pool.close({ force: true });
  }
});

test('bad options are typed errors before any SQL', async () => {
  const { db, sent } = recordingPool(fx.pool);
  const bad: [() => Promise<unknown>, string][] = [
    [() => vacuumTable(db, 'items', { full: true, parallel: 2 }), 'parallel'],
    [() => vacuumTable(db, 'items', { parallel: -1 }), 'parallel'],
    [() => vacuumTable(db, 'items', { bufferUsageLimitKb: 5 }), 'bufferUsageLimitKb'],
    [() => vacuumTable(db, 'items', { indexCleanup: 'sometimes' as never }), 'indexCleanup'],
    [() => vacuumTable(db, 'items', { full: 'yes' as never }), 'full'],
    [() => vacuumTable(db, 'items', { lockTimeoutMs: 1.5 }), 'lockTimeoutMs'],
    [() => vacuumTable(db, 'items', { statementTimeoutMs: -1 }), 'statementTimeoutMs'],
    [() => vacuumTable(db, 'items', { bogus: true } as never), 'vacuum options'],
    [() => reindexTable(db, 'items', { concurrently: 1 as never }), 'concurrently'],
    [() => truncateTable(db, 'items', { cascade: 'true' as never }), 'cascade'],
  ];
  for (const [run, field] of bad) await expect(run()).rejects.toMatchObject({ code: 'MAINTENANCE_INVALID_INPUT', field });
  expect(sent).toEqual([]);
  expect(new MaintenanceInputError('x', 'y')).toBeInstanceOf(Error);
});
