/**
 * `pnpm bench` — one PostgreSQL, every suite in `src/suites/*.ts`, ratios against peers in the same run.
 *
 * SUITE CONTRACT (read this before adding a suite)
 * - A suite is a file `src/suites/<name>.ts` with `export default async function run(ctx: BenchContext)`.
 *   Suites run one after another in file-name order; select some with `pnpm bench -- pool rls` or
 *   `BENCH_SUITES=pool,rls`.
 * - `ctx.config` / `ctx.url` reach a database (`accountdb_bench` on a server this run started, or
 *   `BENCH_DATABASE_URL`) as a superuser. It holds `bench_accounts(id int primary key, name text,
 *   balance numeric)` with `ctx.benchTable.rows` rows (ids 1..rows). Create anything else you need
 *   with `ctx.admin(sql, values)` and drop it when done; never print `ctx.url` or the password.
 * - Create your own pools (same `maxConnections` for every contender: `ctx.poolSize`) and close them
 *   before returning. Pass `sslmode: 'disable'` to `createPool` (local server, no TLS).
 * - Measure with `ctx.measureAbba({ title, contenders, concurrency, bar })` — the first contender is
 *   the baseline, a CONTROL row is added for you — and print with `ctx.printAbba(result)`, which also
 *   collects rows below their bar for the summary at the end. Settings (pairs, slot duration, warm-up,
 *   quick mode) come from the environment; see `settingsFromEnv` in abba.ts. Use `ctx.print` and
 *   `ctx.printTable` for anything else.
 * - Keep a suite's default run to a few minutes (the whole run should stay under ~15 minutes on a
 *   2-core machine) and make it much shorter when `ctx.settings.quick` is true.
 * - A suite that throws is reported and the run goes on; the process exits non-zero at the end.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createPool, type Pool } from '@accountdb/pool';
import { PostgresServer } from '@accountdb/test-db';
import pg from 'pg';
import {
  type AbbaOptions,
  type AbbaResult,
  type BenchSettings,
  formatAbba,
  formatTable,
  measureAbba,
  runWorkers,
  settingsFromEnv,
} from './abba.js';

/** Where the bench database is; a superuser on it. */
export interface BenchConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}

export interface BenchContext {
  /** `postgres://` URL of the bench database (contains the password: never print it). */
  readonly url: string;
  readonly config: BenchConnection;
  /** Run one statement as the superuser (setup and teardown, not measurement). */
  admin(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** The table every run creates, filled with ids 1..rows. */
  readonly benchTable: { readonly name: 'bench_accounts'; readonly rows: number };
  /** `maxConnections` every contender's pool gets, so comparisons are like for like. */
  readonly poolSize: number;
  /** A new `@accountdb/pool` pool of {@link poolSize} on the bench database (no TLS), closed when the suite ends. */
  newPool(): Pool;
  readonly settings: BenchSettings;
  print(line?: string): void;
  printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void;
  /** {@link measureAbba} with this run's settings. */
  measureAbba(options: AbbaOptions): Promise<AbbaResult>;
  /** Print an ABBA table and remember rows below their bar for the closing summary. */
  printAbba(result: AbbaResult): void;
  runWorkers: typeof runWorkers;
  /** A `pgbench` binary (`BENCH_PGBENCH`, or Debian's PostgreSQL 15 one), if there is one. */
  readonly pgbenchPath: string | undefined;
  /**
   * Run {@link pgbenchPath} with `args` (options and `-f script`, not the connection) against the
   * bench database and return its tps. Throws when there is no pgbench.
   */
  pgbench(args: readonly string[]): Promise<number>;
}

export type BenchSuite = (ctx: BenchContext) => Promise<void>;

const BENCH_DATABASE = 'accountdb_bench';
const BENCH_ROWS = 10_000;
const POOL_SIZE = 10;

/** The command line without `--` and without `--json FILE` (see {@link jsonPath}). */
function suiteArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') continue;
    if (a === '--json') i++;
    else if (!a.startsWith('--json=')) out.push(a);
  }
  return out;
}

/**
 * Where to write every table as JSON: `--json FILE`, `--json=FILE` or `BENCH_JSON=FILE` (`-` for stdout
 * after the text report). Undefined: no JSON.
 */
function jsonPath(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') {
      const file = argv[i + 1];
      if (file === undefined || file === '' || file.startsWith('--'))
        throw new Error('--json needs a file name (or - for stdout)');
      return file;
    }
    if (a.startsWith('--json=')) {
      const file = a.slice('--json='.length);
      if (file === '') throw new Error('--json= needs a file name (or - for stdout)');
      return file;
    }
  }
  return env.BENCH_JSON || undefined;
}

/** One table of the run, as `--json` writes it: an ABBA table, or a plain table from `printTable`. */
export type BenchJsonTable =
  | ({ readonly suite: string; readonly kind: 'abba' } & AbbaResult)
  | {
      readonly suite: string;
      readonly kind: 'table';
      readonly headers: readonly string[];
      readonly rows: readonly (readonly (string | number)[])[];
    };

function selectedSuites(all: readonly string[]): string[] {
  const fromArgs = suiteArgs(process.argv.slice(2));
  const wanted = fromArgs.length > 0 ? fromArgs : (process.env.BENCH_SUITES ?? '').split(',').filter(Boolean);
  if (wanted.length === 0) return [...all];
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length > 0) throw new Error(`unknown suite(s) ${unknown.join(', ')}; have: ${all.join(', ')}`);
  return all.filter((name) => wanted.includes(name));
}

function findPgbench(): string | undefined {
  const candidates = [process.env.BENCH_PGBENCH, '/usr/lib/postgresql/15/bin/pgbench'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

async function connectTarget(): Promise<{ connection: BenchConnection; stop: () => Promise<void>; source: string }> {
  const external = process.env.BENCH_DATABASE_URL;
  if (external) {
    const u = new URL(external);
    return {
      connection: {
        host: decodeURIComponent(u.hostname),
        port: Number(u.port || 5432),
        database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
        user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
      },
      stop: async () => {},
      source: 'BENCH_DATABASE_URL',
    };
  }
  const server = await PostgresServer.create();
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  await admin.end();
  return {
    connection: { host: server.host, port: server.port, database: BENCH_DATABASE, user: server.user, password: server.password },
    stop: () => server.destroy(),
    source: 'a PostgreSQL started for this run',
  };
}

function urlOf(c: BenchConnection): string {
  const e = encodeURIComponent;
  return `postgres://${e(c.user)}:${e(c.password)}@${c.host}:${c.port}/${e(c.database)}`;
}

async function main(): Promise<number> {
  const suitesDir = join(dirname(fileURLToPath(import.meta.url)), 'suites');
  const all = readdirSync(suitesDir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => basename(f, '.ts'))
    .sort();
  const suites = selectedSuites(all);
  const jsonFile = jsonPath(process.argv.slice(2), process.env);
  const settings = settingsFromEnv();
  const tables: BenchJsonTable[] = [];
  let currentSuite = '';
  const { connection, stop, source } = await connectTarget();
  const adminPool = new pg.Pool({ ...connection, max: 2 });
  // An idle admin connection dropped while the server shuts down must not crash the run.
  adminPool.on('error', () => {});
  const belowBar: string[] = [];
  const failed: string[] = [];
  try {
    const admin = (sql: string, values?: unknown[]) => adminPool.query(sql, values);
    await admin('DROP TABLE IF EXISTS bench_accounts');
    await admin('CREATE TABLE bench_accounts (id int PRIMARY KEY, name text NOT NULL, balance numeric NOT NULL)');
    await admin("INSERT INTO bench_accounts SELECT g, 'account ' || g, (g % 1000) * 1.5 FROM generate_series(1, $1::int) AS g", [
      BENCH_ROWS,
    ]);
    await admin('VACUUM ANALYZE bench_accounts');
    const { rows } = await admin('SELECT version() AS v');
    const pgbenchPath = findPgbench();

    const print = (line = '') => process.stdout.write(`${line}\n`);
    print(`# accountdb bench — ${new Date().toISOString()}`);
    print(`server: ${String(rows[0]?.v).split(',')[0]} (${source})`);
    print(`client: Node ${process.version}, pg ${pgVersion()}, suites: ${suites.join(', ')}`);
    print(
      `settings: ${settings.pairs} ABBA pairs, ${settings.durationMs} ms per slot, ${settings.warmupMs} ms warm-up per contender` +
        `${settings.quick ? ' (BENCH_QUICK)' : ''}; pool size ${POOL_SIZE} for every contender`,
    );
    print(
      `machine: ${cpus().length} CPUs, load average ${loadAverage()} — the client and the server share these CPUs` +
        ' with anything else running: read ratios against the CONTROL row.',
    );

    const suitePools: Pool[] = [];
    const ctx: BenchContext = {
      url: urlOf(connection),
      config: connection,
      admin,
      benchTable: { name: 'bench_accounts', rows: BENCH_ROWS },
      poolSize: POOL_SIZE,
      newPool: () => {
        const pool = createPool({ ...connection, sslmode: 'disable', maxConnections: POOL_SIZE });
        suitePools.push(pool);
        return pool;
      },
      settings,
      print,
      printTable: (headers, rows) => {
        tables.push({ suite: currentSuite, kind: 'table', headers, rows });
        print(formatTable(headers, rows));
      },
      measureAbba: (options) => measureAbba(options, settings),
      printAbba: (result) => {
        tables.push({ suite: currentSuite, kind: 'abba', ...result });
        print(formatAbba(result));
        print();
        for (const r of result.rows)
          if (r.belowBar)
            belowBar.push(
              `${result.title}, ${result.concurrency} worker${result.concurrency === 1 ? '' : 's'}: ${r.name} ${r.ratio.toFixed(3)} < ${result.bar}`,
            );
      },
      runWorkers,
      pgbenchPath,
      pgbench: async (args) => {
        if (!pgbenchPath) throw new Error('no pgbench binary (set BENCH_PGBENCH)');
        const { host, port, database, user, password } = connection;
        const { stdout } = await promisify(execFile)(
          pgbenchPath,
          [...args, '-h', host, '-p', String(port), '-U', user, database],
          { env: { ...process.env, PGPASSWORD: password } },
        );
        return Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN);
      },
    };

    for (const name of suites) {
      currentSuite = name;
      print();
      print(`## ${name}`);
      const started = Date.now();
      try {
        const mod = (await import(pathToFileURL(join(suitesDir, `${name}.ts`)).href)) as { default?: BenchSuite };
        if (typeof mod.default !== 'function') throw new Error(`src/suites/${name}.ts has no default export function`);
        await mod.default(ctx);
        print(`(${name}: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
      } catch (err) {
        failed.push(name);
        print(`suite ${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      } finally {
        await Promise.all(suitePools.splice(0).map((p) => p.close()));
      }
    }
  } finally {
    // Matters only for BENCH_DATABASE_URL: a server started for the run is deleted anyway.
    await adminPool.query('DROP TABLE IF EXISTS bench_accounts').catch(() => {});
    await adminPool.end().catch(() => {});
    await stop();
  }

  process.stdout.write(`\n## summary (load average now ${loadAverage()})\n`);
  if (belowBar.length === 0) process.stdout.write('Every held ratio met its bar.\n');
  else if (settings.quick) {
    // Five short pairs cannot tell a ratio from noise; say so rather than report a verdict.
    for (const line of belowBar) process.stdout.write(`below bar in this BENCH_QUICK run (too few pairs to judge): ${line}\n`);
  } else for (const line of belowBar) process.stdout.write(`BELOW BAR: ${line}\n`);
  if (failed.length > 0) process.stdout.write(`FAILED suites: ${failed.join(', ')}\n`);
  if (jsonFile !== undefined) {
    const json = `${JSON.stringify(
      { date: new Date().toISOString(), node: process.version, pg: pgVersion(), settings, suites, failed, belowBar, tables },
      null,
      2,
    )}\n`;
    if (jsonFile === '-') process.stdout.write(json);
    else {
      writeFileSync(jsonFile, json);
      process.stdout.write(`JSON of every table written to ${jsonFile}\n`);
    }
  }
  // A ratio below its bar can be noise on a shared CPU; only BENCH_STRICT=1 makes it fail the run.
  const strict = process.env.BENCH_STRICT === '1';
  return failed.length > 0 || (strict && belowBar.length > 0) ? 1 : 0;
}

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

function pgVersion(): string {
  return (createRequire(import.meta.url)('pg/package.json') as { version: string }).version;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
