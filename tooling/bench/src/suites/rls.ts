/**
 * @accountdb/rls (issue 3): one primary-key lookup inside a user context against the same lookup
 * plain, and against the seed's approach (session-level set_config, query, clear), at 1 and 16
 * workers in one run. Bar: `rls.query` ≥ 0.9× plain at 1 worker and ≥ 0.5× at 16.
 *
 * Every contender has its own `@accountdb/pool` of ctx.poolSize connections. The table has no
 * policy and the bench role is a superuser, so this measures the mechanism (statements and round
 * trips), not policy evaluation, which costs the same whichever way the context is set.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from '@accountdb/pool';
import { createRls } from '@accountdb/rls';
import { type Contender, median, quantile } from '../abba.js';
import type { BenchContext } from '../main.js';

const BARS = new Map([
  [1, 0.9],
  [16, 0.5],
]);

export default async function run(ctx: BenchContext): Promise<void> {
  const pool = () => ctx.newPool();
  const rows = ctx.benchTable.rows;
  const pk = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % rows) + 1;
  const userFor = (worker: number, seq: number) => ({ userId: 1 + ((worker * 31 + seq) % 1000), role: 'user' });

  const rls = createRls({ roles: ['user'] });
  const unnamed = createRls({ roles: ['user'], preparedStatements: false });
  const [plainPool, controlPool, queryPool, scopePool, seedPool, explicitPool, unnamedPool, namedPool, plainNamedPool] =
    Array.from({ length: 9 }, pool) as [Pool, Pool, Pool, Pool, Pool, Pool, Pool, Pool, Pool];

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
      name: 'rls.query, named statement',
      op: (w, s) => rls.query(namedPool, userFor(w, s), { name: 'pk', text: pk, values: [idFor(w, s)] }),
      reference: true,
    },
    {
      name: 'plain pool.query, named statement',
      op: (w, s) => plainNamedPool.query({ name: 'pk', text: pk, values: [idFor(w, s)] }),
      reference: true,
    },
    {
      name: 'rls.query, readOnly (BEGIN…COMMIT)',
      op: (w, s) => rls.query(explicitPool, userFor(w, s), pk, [idFor(w, s)], { readOnly: true }),
      reference: true,
    },
  ];

  ctx.print(`each contender has its own pool of ${ctx.poolSize}; bar on rls.query: ≥ 0.9× plain at 1 worker, ≥ 0.5× at 16`);
  ctx.print(
    'round trips per lookup: plain 1, rls.query 1 (3 statements: context, yours, session-level blanking; one Sync, one write; ours prepared once per',
  );
  ctx.print(
    'connection), preparedStatements: false 1 (parsed every time, as behind PgBouncer < 1.21), readOnly 1 (BEGIN…COMMIT,',
  );
  ctx.print('5 statements), withUserContext 2, seed 3. Reference rows are printed for comparison and not held to the bar.');
  ctx.print('The two "named statement" rows prepare the lookup itself once per connection: compare them with each other.');
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
  ctx.print();
  await secondStatementFloor(ctx, pk);
}

/**
 * What one more statement in the same flight costs the server, seen from a C client: pgbench at one
 * client, each script one pipeline (one Sync) — the lookup alone, a no-op statement before it, and
 * the context statement before it. Any design that sets the context with a statement pays at least
 * the no-op's cost; if `rls.query`'s ratio is near these, what is left is the server's.
 */
async function secondStatementFloor(ctx: BenchContext, pk: string): Promise<void> {
  if (!ctx.pgbenchPath) {
    ctx.print('second-statement floor skipped: no pgbench binary (set BENCH_PGBENCH)');
    return;
  }
  const rounds = ctx.settings.quick ? 2 : 8;
  const transactions = ctx.settings.quick ? 500 : 3000;
  const pickId = `\\set id random(1, ${ctx.benchTable.rows})\n`;
  const lookup = `${pk.replace('$1', ':id')};\n`;
  const setContext =
    "select where (pg_catalog.set_config('app.current_user_id', :uid::text, true) || pg_catalog.set_config('app.current_user_role', 'user', true)) is null;\n";
  const scripts = {
    lookup: `${pickId}\\startpipeline\n${lookup}\\endpipeline\n`,
    'no-op + lookup': `${pickId}\\startpipeline\nselect where false;\n${lookup}\\endpipeline\n`,
    'context + lookup': `${pickId}\\set uid random(1, 1000)\n\\startpipeline\n${setContext}${lookup}\\endpipeline\n`,
  };
  const names = Object.keys(scripts) as (keyof typeof scripts)[];
  const dir = mkdtempSync(join(tmpdir(), 'accountdb-bench-'));
  try {
    for (const name of names) writeFileSync(join(dir, `${names.indexOf(name)}.sql`), scripts[name]);
    const rows: (string | number)[][] = [];
    for (const mode of ['extended', 'prepared'] as const) {
      const tps = new Map(names.map((n) => [n, [] as number[]]));
      for (let round = 0; round < rounds; round++) {
        // Rotate the order each round so drift in the machine's load hits every script alike.
        for (let k = 0; k < names.length; k++) {
          const name = names[(round + k) % names.length] as keyof typeof scripts;
          const args = ['-n', '-M', mode, '-c', '1', '-t', String(transactions), '-f', join(dir, `${names.indexOf(name)}.sql`)];
          tps.get(name)?.push(await ctx.pgbench(args));
        }
      }
      const base = tps.get('lookup') ?? [];
      for (const name of names) {
        const ratios = (tps.get(name) ?? []).map((t, i) => t / (base[i] ?? Number.NaN));
        rows.push([
          `-M ${mode}: ${name}`,
          Math.round(median(tps.get(name) ?? [])).toLocaleString('en-US'),
          median(ratios).toFixed(3),
          `${quantile(ratios, 0.25).toFixed(3)}–${quantile(ratios, 0.75).toFixed(3)}`,
        ]);
      }
    }
    ctx.print(`second-statement floor — pgbench, 1 client, one pipeline (one Sync) per lookup, ${rounds} rotated rounds:`);
    ctx.printTable(['pgbench script', 'tps (median)', 'vs lookup', 'p25–p75'], rows);
    ctx.print('(-M extended parses every statement, as pool.query does the lookup; -M prepared parses none, as rls.query');
    ctx.print(' does the context statement. rls.query sits between the two.)');
    ctx.print();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
