import { performance } from 'node:perf_hooks';
import type { Pool } from '@accountdb/pool';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRls, getUserConnectionInfo, RlsScopeError, type RlsTransaction } from '../src/index.js';
import { createFixture, type Fixture, rowsOf, USERS, viaPgBouncer } from './fixture.js';

const SCOPES = 10_000;
const CONCURRENCY = 48;
const POOL_SIZE = 8;

let fx: Fixture;
let pool: Pool;
beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(POOL_SIZE);
});
afterAll(() => fx?.close());

/** Seeded so a failing run can be replayed with FUZZ_SEED. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Outcome = 'ok' | 'thrown' | 'sqlError' | 'rejectedWrite' | 'swallowed' | 'plain';

test(`concurrency fuzz: ${USERS} users, ${SCOPES} scopes, ${CONCURRENCY} workers on a pool of ${POOL_SIZE}`, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const random = rng(seed);
  let fallbacks = 0;
  const countFallbacks = {
    trace() {},
    debug() {},
    info() {},
    error() {},
    warn: (_obj: object, msg?: string) => {
      if (msg?.includes('unnamed statements from now on')) fallbacks++;
    },
    child: () => countFallbacks,
  };
  // Behind PgBouncer 1.18 the prepared instance meets lost statements and falls back mid-run.
  const prepared = createRls({ roles: ['user', 'admin'], logger: countFallbacks as never });
  const unnamed = createRls({ roles: ['user', 'admin'], preparedStatements: false });
  const violations: string[] = [];
  const outcomes: Record<Outcome, number> = { ok: 0, thrown: 0, sqlError: 0, rejectedWrite: 0, swallowed: 0, plain: 0 };
  const users = new Set<number>();
  const violation = (what: string) => {
    if (violations.length < 20) violations.push(what);
    else violations.length++;
  };

  /** Every row visible must be the user's own, all of them, and the accessor must agree. */
  async function checkOwn(tx: RlsTransaction, user: number, where: string) {
    const { rows } = await tx.query<{ user_id: number; ctx: number | null }>(
      'select user_id, app.current_user_id() as ctx from notes',
    );
    if (rows.length !== rowsOf(user) || rows.some((r) => r.user_id !== user || r.ctx !== user))
      violation(`${where}: user ${user} saw ${rows.length} rows of users ${[...new Set(rows.map((r) => r.user_id))].join(',')}`);
  }

  async function scope(n: number): Promise<void> {
    const user = 1 + Math.floor(random() * USERS);
    users.add(user);
    const role = random() < 0.5 ? 'user' : 'admin';
    const dice = random();
    const rls = random() < 0.5 ? prepared : unnamed;
    const delay = random() < 0.3 ? Math.floor(random() * 3) : -1;
    const pause = () => (delay < 0 ? Promise.resolve() : delay === 0 ? new Promise((r) => setImmediate(r)) : sleep(delay));

    if (dice < 0.1) {
      // A plain borrower between scopes must see no context: no rows, NULL settings, the login role.
      const { rows } = await pool.query<{ n: number; uid: string | null; cu: string }>(
        `select (select count(*)::int from notes) as n, nullif(current_setting('app.current_user_id', true), '') as uid, current_user as cu`,
      );
      if (rows[0]?.n !== 0 || rows[0]?.uid !== null || rows[0]?.cu !== fx.app.user)
        violation(`plain borrower #${n} saw ${JSON.stringify(rows[0])}`);
      outcomes.plain++;
      return;
    }
    if (dice < 0.3) {
      const { rows } = await rls.query<{ user_id: number; ctx: number | null; role: string | null }>(
        pool,
        { userId: String(user), role },
        'select user_id, app.current_user_id() as ctx, app.current_user_role() as role from notes',
      );
      if (rows.length !== rowsOf(user) || rows.some((r) => r.user_id !== user || r.ctx !== user || r.role !== role))
        violation(`rls.query #${n}: user ${user} saw ${rows.length} rows`);
      outcomes.ok++;
      return;
    }
    const failure = random();
    try {
      await rls.withUserContext(pool, { userId: user, role }, async (tx) => {
        await pause();
        await checkOwn(tx, user, `scope #${n}`);
        if (random() < 0.1) {
          const info = await getUserConnectionInfo(tx, prepared);
          if (info.userId !== String(user) || info.role !== role || info.transactionStatus !== 'T')
            violation(`scope #${n}: connection info ${JSON.stringify(info)}`);
        }
        if (failure < 0.1) {
          // Written, then thrown: the write must be rolled back or later counts break.
          await tx.query(`insert into notes (user_id, body) values ($1, 'must roll back')`, [user]);
          await pause();
          throw new Error('injected');
        }
        if (failure < 0.17) await tx.query('select 1 / 0');
        if (failure < 0.22) await tx.query(`insert into notes (user_id, body) values ($1, 'not mine')`, [1 + (user % USERS)]);
        if (failure < 0.25) {
          await tx.query('select 1 / 0').catch(() => {});
          return;
        }
        await pause();
        await checkOwn(tx, user, `scope #${n} (second statement)`);
      });
      if (failure < 0.25) violation(`scope #${n}: injected failure ${failure.toFixed(3)} did not surface`);
      else outcomes.ok++;
    } catch (err) {
      const code = (err as { sqlstate?: string }).sqlstate;
      if (failure < 0.1 && (err as Error).message === 'injected') outcomes.thrown++;
      else if (failure >= 0.1 && failure < 0.17 && code === '22012') outcomes.sqlError++;
      else if (failure >= 0.17 && failure < 0.22 && code === '42501') outcomes.rejectedWrite++;
      else if (failure >= 0.22 && failure < 0.25 && err instanceof RlsScopeError && err.reason === 'commitFailed')
        outcomes.swallowed++;
      else violation(`scope #${n}: unexpected ${code ?? ''} ${(err as Error).message}`);
    }
  }

  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < SCOPES) await scope(next++);
    }),
  );
  const seconds = (performance.now() - started) / 1000;

  const leftover = await fx.db.admin(`select count(*)::int as n from notes where body in ('must roll back', 'not mine')`);
  if (leftover.rows[0].n !== 0) violation(`${leftover.rows[0].n} rows from failed scopes were committed`);
  const stats = pool.stats();
  const figures = {
    mode: viaPgBouncer ? 'PgBouncer (transaction pooling)' : 'direct',
    seed,
    scopes: SCOPES,
    users: users.size,
    concurrency: CONCURRENCY,
    poolSize: POOL_SIZE,
    ...outcomes,
    violations: violations.length,
    preparedFallbacks: fallbacks,
    seconds: Number(seconds.toFixed(2)),
    scopesPerSecond: Math.round(SCOPES / seconds),
    connects: stats.connects,
    destroyed: Object.fromEntries(Object.entries(stats.destroyed).filter(([, v]) => v > 0)),
  };
  console.info(`[rls fuzz] ${JSON.stringify(figures)}`);
  expect(violations).toEqual([]);
  expect(users.size).toBeGreaterThanOrEqual(USERS);
  expect(outcomes.ok + outcomes.thrown + outcomes.sqlError + outcomes.rejectedWrite + outcomes.swallowed + outcomes.plain).toBe(
    SCOPES,
  );
  expect(
    Math.min(outcomes.thrown, outcomes.sqlError, outcomes.rejectedWrite, outcomes.swallowed, outcomes.plain),
  ).toBeGreaterThan(0);
  // About 10-40 s on 2 shared cores; a generous budget so a busy machine slows the run instead of failing it.
}, 240_000);
