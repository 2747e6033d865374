#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AccountDbError, createPool, loadConfig, type Pool, type PoolConfigInput } from '@accountdb/pool';
import { createMigration } from './create.js';
import { formatFinding, type LintFinding } from './lint.js';
import type { MigrationProgress } from './options.js';
import {
  baselineMigrations,
  downMigrations,
  type MigrationStatus,
  migrationStatus,
  planMigrations,
  repairMigrations,
  runMigrations,
  validateMigrations,
} from './runner.js';

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failed: 1, drift: 2, lockTimeout: 3, pending: 4, lint: 5, usage: 64 } as const;

const USAGE = `Usage: accountdb-migrate <command> [options]

Commands:
  up                 apply pending migrations (--to <version>, --out-of-order, --strict)
  down               revert the newest migrations with their .down.sql files (--steps <n>, default 1)
  status             list migrations; exits 4 when any is pending, 2 when failed/drifted/out of order
  plan               dry run of up: what would run and lint findings; takes no lock, writes nothing
  create <words...>  create the next NNNN_words.sql (--repeatable for R__words.sql, --down for a .down.sql)
  validate           check checksums, recorded failures, ordering and lint; exits 2 (or 5) on a problem
  repair             remove failed rows and realign checksums with the files
  baseline           mark the database as being at --version <v>

Options:
  --dir <path>                 migrations directory (default: $MIGRATIONS_DIR or ./migrations)
  --schema <name>              history table schema (default public)
  --table <name>               history table (default schema_migrations)
  --lock-timeout <ms>          lock_timeout per migration (default 5000; 0 = none)
  --statement-timeout <ms>     statement_timeout per migration (default 0 = none)
  --wait <ms>                  how long to wait for another runner's migration lock (default 120000)
  --strict                     lint findings are errors (exit 5) instead of warnings (up, plan, validate)
  --json                       print the result as JSON on stdout
  -h, --help

Connection: the pool's environment (DATABASE_URL, DB_*, PG*). Queries are not bounded client-side
(queryTimeoutMs 0) unless DB_QUERY_TIMEOUT_MS is set: a long CREATE INDEX is silent on the wire.

Exit codes: 0 ok, 1 failed, 2 drift/failed row/out of order, 3 lock timeout, 4 pending (status),
5 lint errors (a file PostgreSQL cannot parse; any finding with --strict), 64 usage.`;

class UsageError extends Error {}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(value);
}

function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (!AccountDbError.is(err)) return EXIT.failed;
  switch (err.code) {
    case 'CONFIG_INVALID':
      return EXIT.usage;
    case 'MIGRATION_DRIFT':
    case 'MIGRATION_BLOCKED':
    case 'MIGRATION_OUT_OF_ORDER':
      return EXIT.drift;
    case 'MIGRATION_LOCK_TIMEOUT':
      return EXIT.lockTimeout;
    case 'MIGRATION_LINT':
      return EXIT.lint;
    default:
      return EXIT.failed;
  }
}

function progressPrinter(findings: LintFinding[]): (p: MigrationProgress) => void {
  const tty = process.stderr.isTTY === true;
  return (p) => {
    if (p.event === 'lint') {
      findings.push(p.finding);
      process.stderr.write(`${formatFinding(p.finding)}\n`);
    } else if (p.event === 'start' && tty) process.stderr.write(`\r\x1b[K[${p.index}/${p.total}] ${p.file} ...`);
    else if (p.event === 'done')
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}[${p.index}/${p.total}] ${p.file} ${p.durationMs} ms\n`);
    else if (p.event === 'lock-wait') process.stderr.write(`waiting for the migration lock (${p.waitedMs} ms)\n`);
    else if (p.event === 'retry')
      process.stderr.write(`retry ${p.attempt}${p.file ? ` of ${p.file}` : ''} in ${p.delayMs} ms: ${p.reason}\n`);
  };
}

function printStatus(status: MigrationStatus): void {
  for (const e of status.entries) {
    const when = e.appliedAt ? ` ${e.appliedAt.toISOString()} (${e.durationMs} ms)` : '';
    process.stderr.write(`${e.state.padEnd(14)} ${e.file}${when}\n`);
  }
  if (status.entries.length === 0) process.stderr.write('no migrations\n');
}

function openPool(): Pool {
  const config = loadConfig(process.env);
  const input: PoolConfigInput = {
    ...config,
    ...(config.password === undefined ? {} : { password: config.password }),
    minConnections: 0,
    // A long migration statement (CREATE INDEX on a big table) is silent on the wire: no client-side bound unless asked.
    queryTimeoutMs: process.env.DB_QUERY_TIMEOUT_MS ? config.queryTimeoutMs : 0,
    applicationName: config.applicationName ?? 'accountdb-migrate',
  };
  return createPool(input);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      schema: { type: 'string' },
      table: { type: 'string' },
      to: { type: 'string' },
      steps: { type: 'string' },
      version: { type: 'string' },
      'out-of-order': { type: 'boolean' },
      'lock-timeout': { type: 'string' },
      'statement-timeout': { type: 'string' },
      wait: { type: 'string' },
      repeatable: { type: 'boolean' },
      down: { type: 'boolean' },
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const json = values.json === true;
  const out = (value: unknown) => {
    if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  };
  const dir = resolve(values.dir ?? process.env.MIGRATIONS_DIR ?? 'migrations');
  if (command === 'create') {
    if (rest.length === 0) throw new UsageError('create needs a description, e.g. `create add users table`');
    const created = await createMigration({
      dir,
      description: rest.join(' '),
      kind: values.repeatable ? 'repeatable' : 'versioned',
      down: values.down === true,
    });
    process.stderr.write(`created ${created.path}${created.downPath ? ` and ${created.downPath}` : ''}\n`);
    out(created);
    return EXIT.ok;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const findings: LintFinding[] = [];
  // Options left undefined take the library's defaults.
  const base = { dir, schema: values.schema, table: values.table, outOfOrder: values['out-of-order'] };
  const run = {
    ...base,
    lockTimeoutMs: integer('lock-timeout', values['lock-timeout']),
    statementTimeoutMs: integer('statement-timeout', values['statement-timeout']),
    migrationLockTimeoutMs: integer('wait', values.wait),
    onProgress: progressPrinter(findings),
  };
  const up = { ...run, to: values.to, strict: values.strict };
  const known = ['up', 'down', 'status', 'plan', 'validate', 'repair', 'baseline'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`);
  const pool = openPool();
  try {
    switch (command) {
      case 'up': {
        const applied = await runMigrations(pool, up);
        process.stderr.write(applied.length === 0 ? 'up to date\n' : `applied ${applied.length} migration(s)\n`);
        out({ applied, findings });
        return EXIT.ok;
      }
      case 'down': {
        const reverted = await downMigrations(pool, { ...run, steps: integer('steps', values.steps) });
        process.stderr.write(`reverted ${reverted.length} migration(s)\n`);
        out({ reverted });
        return EXIT.ok;
      }
      case 'status': {
        const status = await migrationStatus(pool, base);
        printStatus(status);
        out({ ...status, pending: status.pending.map((f) => f.file) });
        if (status.failed.length > 0 || status.drift.length > 0 || status.outOfOrder.length > 0) return EXIT.drift;
        return status.pending.length > 0 ? EXIT.pending : EXIT.ok;
      }
      case 'plan': {
        const plan = await planMigrations(pool, up);
        for (const m of plan.migrations)
          process.stderr.write(
            `would apply ${m.file} (${m.transaction ? 'transaction' : 'no transaction'}, ${m.statements} statements)\n`,
          );
        for (const p of plan.problems) process.stderr.write(`problem: ${p}\n`);
        if (plan.migrations.length === 0 && plan.problems.length === 0) process.stderr.write('nothing to apply\n');
        out({ migrations: plan.migrations, problems: plan.problems, findings: plan.findings });
        if (plan.problems.length > 0) return EXIT.drift;
        return plan.findings.some((f) => f.severity === 'error') ? EXIT.lint : EXIT.ok;
      }
      case 'validate': {
        await validateMigrations(pool, up);
        process.stderr.write('valid\n');
        out({ valid: true });
        return EXIT.ok;
      }
      case 'repair': {
        const result = await repairMigrations(pool, run);
        process.stderr.write(
          `removed ${result.removedFailed.length} failed row(s), realigned ${result.realigned.length} checksum(s)\n`,
        );
        out(result);
        return EXIT.ok;
      }
      default: {
        if (values.version === undefined) throw new UsageError('baseline needs --version <v>');
        await baselineMigrations(pool, { ...run, version: values.version });
        process.stderr.write(`baselined at version ${values.version}\n`);
        out({ baseline: values.version });
        return EXIT.ok;
      }
    }
  } finally {
    await pool.close({ timeoutMs: 5_000 });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code =
      err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? EXIT.usage : exitCodeOf(err);
    // Our errors never contain passwords or connection strings; print the message, not the stack.
    process.stderr.write(`accountdb-migrate: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.argv.includes('--json'))
      process.stdout.write(
        `${JSON.stringify({
          error: {
            code: (err as { code?: unknown }).code ?? null,
            message: err instanceof Error ? err.message : String(err),
            ...((err as { findings?: unknown }).findings ? { findings: (err as { findings: unknown }).findings } : {}),
          },
        })}\n`,
      );
    process.exitCode = code;
  },
);
