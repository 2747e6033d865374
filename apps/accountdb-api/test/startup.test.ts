import { readdirSync, readFileSync } from 'node:fs';
import { createPool, type Pool } from '@accountdb/pool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rowLevelSecuritySql } from '../src/policies.js';
import { provisionLoginRole } from '../src/provision.js';
import { InitDatabaseError, MIGRATIONS_DIR, Startup } from '../src/startup.js';
import { silentLogger, startTestApp, type TestApp } from './helpers.js';

test('migrations/R__row_level_security.sql is what `write:rls` generates from the rls helpers', () => {
  const file = readFileSync(`${MIGRATIONS_DIR}/R__row_level_security.sql`, 'utf8');
  expect(file, 'run `pnpm --filter @accountdb/api write:rls` and commit the file').toBe(rowLevelSecuritySql());
});

describe('start-up on one database', () => {
  let t: TestApp;
  const extraPools: Pool[] = [];
  const pool = (user: string, password: string) => {
    const p = createPool({ ...t.db, user, password, sslmode: 'disable', minConnections: 0, maxConnections: 2 });
    extraPools.push(p);
    return p;
  };

  beforeAll(async () => {
    // Built but not started: the tests below start it, several times over.
    t = await startTestApp({ run: false });
  });
  afterAll(async () => {
    for (const p of extraPools) await p.close();
    await t?.close();
  });

  test('three instances starting together: one applies the migrations under the lock, all become ready', async () => {
    const admins = [t.admin, pool(t.db.user, t.db.password), pool(t.db.user, t.db.password)];
    const startups = admins.map((admin) => new Startup({ admin, pool: t.pool, logger: silentLogger, maxRetries: 0 }));
    expect(startups[0]!.progress.phase).toBe('pending');
    await Promise.all(startups.map((s) => s.run()));
    expect(startups.every((s) => s.ready)).toBe(true);
    const applied = startups.reduce((n, s) => n + s.progress.migrationsApplied, 0);
    const files = readdirCount();
    expect(applied).toBe(files);
    const { rows } = await t.db.admin('select count(*)::int as n from schema_migrations where success');
    expect(rows[0].n).toBe(files);
  });

  test('the policies really are applied: the login role sees no row outside a user context', async () => {
    for (const table of ['users', 'accounts', 'hardware', 'cards']) {
      const { rows } = await t.pool.query(`select count(*)::int as n from ${table}`);
      expect(rows[0]?.n, table).toBe(0);
    }
    const { rows } = await t.db.admin('select count(*)::int as n from accounts');
    expect(rows[0].n).toBeGreaterThan(0);
  });

  test('re-running the repeatable policy file and the provisioning works (idempotent)', async () => {
    await t.db.admin(rowLevelSecuritySql());
    await provisionLoginRole(t.admin, { name: t.loginRole, password: t.loginPassword });
    await new Startup({ admin: t.admin, pool: t.pool, logger: silentLogger, maxRetries: 0 }).run();
  });

  test('a failed check stops start-up with a message that says what to fix; fixed, it passes', async () => {
    await t.db.admin('alter table cards no force row level security');
    await t.db.admin(`alter role ${t.loginRole} bypassrls`);
    const startup = new Startup({ admin: t.admin, pool: t.pool, logger: silentLogger, maxRetries: 1, retryIntervalMs: 10 });
    const err = await startup.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InitDatabaseError);
    const message = (err as InitDatabaseError).message;
    expect(message).toContain('after 2 attempts');
    expect(message).toMatch(
      /table cards has Row-Level Security enabled but not FORCEd: apply migrations\/R__row_level_security\.sql/,
    );
    expect(message).toMatch(/login role: .*BYPASSRLS/i);
    expect(startup.progress).toMatchObject({ phase: 'failed', checkAttempts: 2 });

    await t.db.admin('alter table cards force row level security');
    await t.db.admin(`alter role ${t.loginRole} nobypassrls`);
    await t.db.admin(`alter table hardware owner to ${t.loginRole}`);
    const owned = await new Startup({ admin: t.admin, pool: t.pool, logger: silentLogger, maxRetries: 0 })
      .run()
      .catch((e: unknown) => e);
    expect((owned as Error).message).toMatch(/login role owns table hardware/);
    await t.db.admin(`alter table hardware owner to ${t.db.user}`);
    await new Startup({ admin: t.admin, pool: t.pool, logger: silentLogger, maxRetries: 0 }).run();
  });
});

function readdirCount(): number {
  return readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length;
}
