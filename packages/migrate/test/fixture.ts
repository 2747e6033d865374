import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool, type PoolHooks } from '@accountdb/pool';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';

/** One database per test file, fresh migration directories, and pools closed at the end. */
export interface Fixture {
  readonly db: TestDatabase;
  pool(extra?: { max?: number; hooks?: PoolHooks }): Pool;
  /** A temp directory holding `files` (name → contents). */
  dir(files: Record<string, string>): Promise<string>;
  write(dir: string, name: string, text: string): Promise<void>;
  close(): Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const db = await createTestDatabase();
  const pools: Pool[] = [];
  const dirs: string[] = [];
  return {
    db,
    pool({ max = 4, hooks } = {}) {
      const pool = createPool(
        { ...db, sslmode: 'disable', minConnections: 0, maxConnections: max, retryIntervalMs: 50, maxRetryIntervalMs: 500 },
        hooks ? { hooks } : {},
      );
      pools.push(pool);
      return pool;
    },
    async dir(files) {
      const dir = await mkdtemp(join(tmpdir(), 'migrate-test-'));
      dirs.push(dir);
      for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
      return dir;
    },
    write: (dir, name, text) => writeFile(join(dir, name), text),
    async close() {
      await Promise.all(pools.map((p) => p.close({ force: true })));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      await db.drop();
    },
  };
}

/** A fresh schema-like namespace per test: each test uses its own history table and object names. */
let counter = 0;
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}_${process.pid}_${counter}`;
}
