/**
 * @accountdb/rls (issue 3): one primary-key lookup inside a user context against the same lookup
 * plain, and against the seed's approach (session-level set_config, query, clear), at 1 and 16
 * workers in one run. Bar: `rls.query` ≥ 0.9× plain at 1 worker and ≥ 0.5× at 16.
 *
 * Every contender has its own `@accountdb/pool` of ctx.poolSize connections. The table has no
 * policy and the bench role is a superuser, so this measures the mechanism (statements and round
 * trips), not policy evaluation, which costs the same whichever way the context is set.
 */
import { createPool, type Pool } from '@accountdb/pool';
import { createRls } from '@accountdb/rls';
import type { Contender } from '../abba.js';
import type { BenchContext } from '../main.js';

const BARS = new Map([
  [1, 0.9],
  [16, 0.5],
]);

export default async function run(ctx: BenchContext): Promise<void> {
  const { host, port, database, user, password } = ctx.config;
  const pools: Pool[] = [];
  const pool = () => {
    const p = createPool({ host, port, database, user, password, sslmode: 'disable', maxConnections: ctx.poolSize });
    pools.push(p);
    return p;
  };
  const rows = ctx.benchTable.rows;
  const pk = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % rows) + 1;
  const userFor = (worker: number, seq: number) => ({ userId: 1 + ((worker * 31 + seq) % 1000), role: 'user' });

  const rls = createRls({ roles: ['user'] });
  const unnamed = createRls({ roles: ['user'], preparedStatements: false });
  const [plainPool, controlPool, queryPool, scopePool, seedPool, explicitPool, unnamedPool] = Array.from({ length: 7 }, pool) as [
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
  ];

  // The seed's get_user_db_connection: set at session level, query, clear in `finally`, release.
  const seedApproach = async (w: number, s: number) => {
    const { userId, role } = userFor(w, s);
    const conn = await seedPool.acquire();
    try {
      await conn.query("select set_config('app.current_user_id', $1, false), set_config('app.current_user_role', $2, false)", [
        String(userId),
        role,
      ]);
      return await conn.query(pk, [idFor(w, s)]);
    } finally {
      await conn.query("select set_config('app.current_user_id', '', false), set_config('app.current_user_role', '', false)");
      conn.release();
    }
  };

  const contenders: Contender[] = [
    { name: 'plain pool.query', op: (w, s) => plainPool.query(pk, [idFor(w, s)]) },
    { name: 'rls.query (ours)', op: (w, s) => rls.query(queryPool, userFor(w, s), pk, [idFor(w, s)]) },
    {
      name: 'rls.withUserContext, 1 stmt',
      op: (w, s) => rls.withUserContext(scopePool, userFor(w, s), (tx) => tx.query(pk, [idFor(w, s)])),
      reference: true,
    },
    {
      name: 'rls.query, preparedStatements: false',
      op: (w, s) => unnamed.query(unnamedPool, userFor(w, s), pk, [idFor(w, s)]),
      reference: true,
    },
    { name: 'seed: session set/query/clear', op: seedApproach, reference: true },
    {
      name: 'rls.query, readOnly (BEGIN…COMMIT)',
      op: (w, s) => rls.query(explicitPool, userFor(w, s), pk, [idFor(w, s)], { readOnly: true }),
      reference: true,
    },
  ];

  try {
    ctx.print(`each contender has its own pool of ${ctx.poolSize}; bar on rls.query: ≥ 0.9× plain at 1 worker, ≥ 0.5× at 16`);
    ctx.print('round trips per lookup: plain 1, rls.query 1 (3 statements, one Sync; context statements prepared once per');
    ctx.print(
      'connection), preparedStatements: false 1 (parsed every time, as behind PgBouncer < 1.21), readOnly 1 (BEGIN…COMMIT,',
    );
    ctx.print('5 statements), withUserContext 2, seed 3. Reference rows are printed for comparison and not held to the bar.');
    ctx.print();
    const summary: (string | number)[][] = [];
    for (const [concurrency, bar] of BARS) {
      const result = await ctx.measureAbba({
        title: 'rls: PK lookup in a user context',
        contenders,
        concurrency,
        control: { name: 'plain pool.query (second pool)', op: (w, s) => controlPool.query(pk, [idFor(w, s)]) },
        bar,
      });
      ctx.printAbba(result);
      const ratio = (name: string) => result.rows.find((r) => r.name.startsWith(name))?.ratio.toFixed(3) ?? '?';
      summary.push([concurrency, bar, ratio('rls.query (ours)'), ratio('rls.withUserContext'), ratio('seed'), ratio('CONTROL')]);
    }
    ctx.printTable(['workers', 'bar', 'rls.query', 'withUserContext', 'seed approach', 'control'], summary);
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}
