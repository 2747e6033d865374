/**
 * `pnpm --filter @accountdb/migrate bench`: apply the same 500 small SQL migrations with ours and with
 * node-pg-migrate (its SQL-file support, one transaction per migration like ours) on one PostgreSQL, each run
 * on a fresh database, in ABBA order with a node-pg-migrate CONTROL (the noise floor); print every time, the
 * medians, the ratio ours/theirs (bar <= 1.0), the driver calls (`client.query`: a query, or a whole batch) each makes per migration, and the time of `status`
 * (and of an `up` with nothing to do) on 500 applied.
 *
 * BENCH_MIGRATIONS (500), BENCH_PAIRS (5 pairs of A B C · C B A = 30 runs), BENCH_DATABASE_URL (a superuser URL to use
 * instead of starting a server; databases `bench_migrate_*` are created and dropped on it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@accountdb/pool';
import { PostgresServer } from '@accountdb/test-db';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { migrationStatus, runMigrations } from '../src/index.js';

const COUNT = Number(process.env.BENCH_MIGRATIONS ?? 500);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 5);

/** Small migrations of the usual kinds, in groups of five per table. */
function migrationSql(i: number): string {
  const t = `bench_t${Math.ceil(i / 5)}`;
  switch (i % 5) {
    case 1:
      return `CREATE TABLE ${t} (id bigint PRIMARY KEY, name text NOT NULL);\n`;
    case 2:
      return `ALTER TABLE ${t} ADD COLUMN created_at timestamptz DEFAULT now();\n`;
    case 3:
      return `INSERT INTO ${t} (id, name) SELECT g, 'n' || g FROM generate_series(1, 10) AS g;\n`;
    case 4:
      return `CREATE INDEX ${t}_name ON ${t} (name);\n`;
    default:
      return `CREATE VIEW ${t}_v AS SELECT id, name FROM ${t};\nCOMMENT ON VIEW ${t}_v IS 'step ${i}';\n`;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number) => `${x.toFixed(0).padStart(7)} ms`;

async function main(): Promise<void> {
  const server = process.env.BENCH_DATABASE_URL ? undefined : await PostgresServer.create();
  const adminUrl = process.env.BENCH_DATABASE_URL ?? server!.url();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dir = await mkdtemp(join(tmpdir(), 'bench-migrate-'));
  let databases = 0;
  const urlOf = (name: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  /** Run `fn` on a fresh database, dropped afterwards. */
  const onFreshDatabase = async <T>(fn: (url: string) => Promise<T>): Promise<T> => {
    const name = `bench_migrate_${process.pid}_${++databases}`;
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      return await fn(urlOf(name));
    } finally {
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    }
  };
  const openPool = (url: string) =>
    createPool({ connectionString: url, sslmode: 'disable', minConnections: 0, queryTimeoutMs: 0 });
  // node-pg-migrate does not await the end of a client it opened itself: give it one we connect and end.
  const theirs = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    try {
      const options = {
        dir,
        direction: 'up' as const,
        migrationsTable: 'pgmigrations',
        count: Infinity,
        singleTransaction: false,
      };
      await runner({ dbClient: client, ...options, log: () => {} } as const);
    } finally {
      await client.end();
    }
  };
  const applied = async (url: string, table: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    } finally {
      await c.end();
    }
  };
  /** Each contender applies the directory to `url` and closes its connections; `table` is its history. */
  const contenders = {
    ours: {
      table: 'schema_migrations',
      run: async (url: string) => {
        const pool = openPool(url);
        try {
          await runMigrations(pool, { dir });
        } finally {
          await pool.close();
        }
      },
    },
    'node-pg-migrate': { table: 'pgmigrations', run: theirs },
  };
  /** Time one contender on a fresh database and check that it applied every migration. */
  const timed = (name: keyof typeof contenders) =>
    onFreshDatabase(async (url) => {
      const t0 = performance.now();
      await contenders[name].run(url);
      const elapsed = performance.now() - t0;
      if ((await applied(url, contenders[name].table)) !== COUNT) throw new Error(`${name} did not apply every migration`);
      return elapsed;
    });
  try {
    for (let i = 1; i <= COUNT; i++) await writeFile(join(dir, `${String(i).padStart(4, '0')}_step_${i}.sql`), migrationSql(i));
    const pgVersion = (await admin.query('SHOW server_version')).rows[0].server_version;
    console.log(
      `migrate bench: ${COUNT} migrations, ${PAIRS} pairs of A B C · C B A (rotating), a fresh database per run, PostgreSQL ${pgVersion}`,
    );

    // Driver calls per migration, counted on pg's Client in a separate, untimed run of each: a call is one
    // query for node-pg-migrate, and one batch (one flight) of several statements for ours.
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    let queries = 0;
    proto.query = function (this: unknown, ...args: unknown[]) {
      queries++;
      return original.apply(this, args);
    };
    const counts: Record<string, number> = {};
    for (const name of Object.keys(contenders) as (keyof typeof contenders)[]) {
      queries = 0;
      await timed(name);
      counts[name] = queries / COUNT;
    }
    proto.query = original;

    // The baseline is node-pg-migrate; CONTROL is node-pg-migrate again in its own slots: its ratio shows the noise floor.
    const names = ['node-pg-migrate', 'ours', 'CONTROL'] as const;
    const run = (name: (typeof names)[number]) => timed(name === 'CONTROL' ? 'node-pg-migrate' : name);
    const times: Record<string, number[]> = { ours: [], 'node-pg-migrate': [], CONTROL: [] };
    const ratios: Record<string, number[]> = { ours: [], CONTROL: [] };
    for (let pair = 0; pair < PAIRS; pair++) {
      // A B C · C B A, the first contender rotating from pair to pair.
      const order = names.map((_, i) => names[(i + pair) % names.length]!);
      const pairTimes: Record<string, number> = { ours: 0, 'node-pg-migrate': 0, CONTROL: 0 };
      for (const name of [...order, ...[...order].reverse()]) {
        const elapsed = await run(name);
        pairTimes[name]! += elapsed;
        times[name]!.push(elapsed);
        console.log(`  pair ${pair + 1} ${name.padEnd(16)} ${ms(elapsed)}`);
      }
      for (const name of ['ours', 'CONTROL']) ratios[name]!.push(pairTimes[name]! / pairTimes['node-pg-migrate']!);
    }

    // status and an `up` with nothing to do, on 500 applied (each on its own database).
    const time = async (fn: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await fn();
        xs.push(performance.now() - t0);
      }
      return median(xs);
    };
    const idle = await onFreshDatabase(async (url) => {
      const pool = openPool(url);
      try {
        await runMigrations(pool, { dir });
        return { status: await time(() => migrationStatus(pool, { dir })), up: await time(() => runMigrations(pool, { dir })) };
      } finally {
        await pool.close();
      }
    });
    const theirsIdle = await onFreshDatabase(async (url) => {
      await theirs(url);
      return time(() => theirs(url));
    });

    console.log('');
    console.log('contender          median time   per migration   calls/migration     ratio to node-pg-migrate (p25-p75)');
    const quantile = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.round(q * (xs.length - 1))]!;
    for (const name of names) {
      const m = median(times[name]!);
      const r = ratios[name];
      const ratio = r
        ? `${median(r).toFixed(3)} (${quantile(r, 0.25).toFixed(3)}-${quantile(r, 0.75).toFixed(3)})`
        : '1.000 baseline';
      const queries = (counts[name] ?? counts['node-pg-migrate']!).toFixed(2);
      console.log(
        `${name.padEnd(16)} ${ms(m)}   ${(m / COUNT).toFixed(2).padStart(8)} ms   ${queries.padStart(10)}          ${ratio}`,
      );
    }
    const ratio = median(ratios.ours!);
    console.log(`ratio ours/theirs: ${ratio.toFixed(3)} (median of per-pair ratios) ${ratio <= 1 ? 'OK' : 'ABOVE'} bar 1.0`);
    console.log(`status on ${COUNT} applied (ours, median of 5): ${idle.status.toFixed(1)} ms`);
    console.log(
      `up with nothing to do on ${COUNT} applied (median of 5): ours ${idle.up.toFixed(1)} ms, node-pg-migrate ${theirsIdle.toFixed(1)} ms`,
    );
    if (process.env.BENCH_STRICT === '1' && ratio > 1) process.exitCode = 1;
  } finally {
    await admin.end();
    await rm(dir, { recursive: true, force: true });
    await server?.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
