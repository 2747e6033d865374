import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@accountdb/pool';
import { PostgresServer } from '@accountdb/test-db';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MigrationProgress, runMigrations } from '../src/index.js';

// Its own server: this file stops and starts it.
let server: PostgresServer;
beforeAll(async () => {
  server = await PostgresServer.create();
});
afterAll(async () => {
  await server?.destroy();
});

test('a server restart in the middle of a run: the retrying runner completes, each migration once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'migrate-restart-'));
  const pool = createPool({
    connectionString: server.url(),
    sslmode: 'disable',
    minConnections: 0,
    maxRetries: 30,
    retryIntervalMs: 50,
    maxRetryIntervalMs: 500,
  });
  const gate = new pg.Client({ connectionString: server.url() });
  gate.on('error', () => {});
  try {
    await writeFile(join(dir, '0001_create.sql'), 'CREATE TABLE restart_t (id int);');
    // Parks the run on a lock the test holds, so the restart surely lands mid-migration.
    await writeFile(join(dir, '0002_fill.sql'), 'SELECT pg_advisory_lock(77);\nINSERT INTO restart_t VALUES (2);');
    await gate.connect();
    await gate.query('SELECT pg_advisory_lock(77)');
    let parked!: () => void;
    const atSecond = new Promise<void>((resolve) => {
      parked = resolve;
    });
    const events: MigrationProgress[] = [];
    const run = runMigrations(pool, {
      dir,
      lockTimeoutMs: 0,
      onProgress: (p) => {
        events.push(p);
        if (p.event === 'start' && p.file === '0002_fill.sql') parked();
      },
    });
    run.catch(() => {});
    await atSecond;
    await server.stop('fast');
    await server.start();
    expect((await run).map((a) => a.file)).toEqual(['0002_fill.sql']);
    expect(events.some((e) => e.event === 'retry')).toBe(true);
    const check = new pg.Client({ connectionString: server.url() });
    await check.connect();
    try {
      expect((await check.query('SELECT id FROM restart_t')).rows).toEqual([{ id: 2 }]);
      expect((await check.query('SELECT script, success FROM schema_migrations ORDER BY installed_rank')).rows).toEqual([
        { script: '0001_create.sql', success: true },
        { script: '0002_fill.sql', success: true },
      ]);
    } finally {
      await check.end();
    }
  } finally {
    await gate.end().catch(() => {});
    await pool.close({ force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
