import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@accountdb/pool';
import { testPoolConfig } from '@accountdb/test-db';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EmbeddedPostgresError, ROOT_DATA_HOME, startEmbeddedPostgres } from '../src/embedded-postgres.js';

// Running as root, the server runs as the `postgres` OS user; a checkout under a private folder
// (say /root, mode 700) is closed to it. These tests build such a folder. As any other user the
// server runs as that user and no folder is closed to it, so there is nothing to test.
const asRoot = process.getuid?.() === 0;
const logger = pino({ level: 'silent' });

describe.runIf(asRoot)('embedded PostgreSQL from a folder closed to the postgres OS user (root only)', () => {
  let privateDir: string;
  let dataDir: string;

  beforeAll(() => {
    privateDir = mkdtempSync(join(tmpdir(), 'accountdb-private-')); // mode 0700, like /root
    expect(statSync(privateDir).mode & 0o777).toBe(0o700);
    dataDir = join(privateDir, 'checkout', '.data');
    mkdirSync(join(privateDir, 'checkout'));
  });
  afterAll(() => {
    rmSync(privateDir, { recursive: true, force: true });
  });

  test('the default data folder moves under /var/lib/accountdb-api, and the server works and stops', async () => {
    const db = await startEmbeddedPostgres({ dataDir, logger });
    try {
      expect(db.dataDir.startsWith(`${ROOT_DATA_HOME}/`)).toBe(true);
      expect(db.created).toBe(true);
      expect(existsSync(dataDir)).toBe(false);
      const pool = createPool(testPoolConfig(db));
      const { rows } = await pool.query<{ user: string }>('select current_user as user');
      await pool.close();
      expect(rows).toEqual([{ user: 'postgres' }]);
    } finally {
      await db.stop();
    }
    expect(existsSync(join(db.dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    // The same checkout finds the same cluster again.
    const again = await startEmbeddedPostgres({ dataDir, logger });
    await again.stop();
    expect(again).toMatchObject({ dataDir: db.dataDir, created: false });
    rmSync(db.dataDir, { recursive: true, force: true });
  }, 120_000);

  test('a data folder the user chose is never moved: a clear error instead, before anything starts', async () => {
    const chosen = join(privateDir, 'chosen');
    const err = await startEmbeddedPostgres({ dataDir: chosen, dataDirChosen: true, logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect((err as Error).message).toMatch(/cannot reach .*chosen.*ACCOUNTDB_DATA_DIR/);
    expect(existsSync(chosen)).toBe(false);
  });

  test('a folder opened to others (o+x) is used where it is', async () => {
    const open = mkdtempSync(join(tmpdir(), 'accountdb-open-'));
    chmodSync(open, 0o755);
    try {
      const db = await startEmbeddedPostgres({ dataDir: join(open, '.data'), logger });
      await db.stop();
      expect(db.dataDir).toBe(join(open, '.data'));
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  }, 120_000);
});
