import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import type { ConnectionFields } from '@accountdb/test-db';
import type { HealthDocument } from '../src/index.js';

/** A pool on a test database; every test file closes its pools in afterEach/afterAll. */
export function poolFor(db: ConnectionFields, extra: PoolConfigInput = {}): Pool {
  return createPool({
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 4,
    ...extra,
  });
}

/** The one entry under `key`; fails the test when the key is missing. */
export function entry(doc: HealthDocument, key: string) {
  const list = doc.checks[key];
  if (!list?.[0]) throw new Error(`no check ${key} in ${JSON.stringify(doc)}`);
  return list[0];
}

/** Poll `condition` until it holds; throws after `limitMs` (a generous bound for a loaded machine, not a timing assertion). */
export async function waitFor(condition: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
