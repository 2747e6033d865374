import { AccountDbError, createPool, loadConfig, type Pool } from '@accountdb/pool';
import { type CleanupEvent, type CleanupStepResult, cleanupDatabase } from './cleanup.js';
import { MaintenanceInputError } from './errors.js';
import { type CleanupPlan, planCleanup } from './plan.js';

/** Where the CLI writes; `isTTY` turns the progress bar on. */
export interface CliIo {
  readonly env: Record<string, string | undefined>;
  readonly stdout: { write(s: string): unknown; isTTY?: boolean };
  readonly stderr: { write(s: string): unknown };
}

const USAGE = `usage: accountdb-maintenance plan|run [--dry-run] [--json] [--schema NAME]... [--exact-bloat] [--jobs N]
                             [--lock-timeout-ms N] [--statement-timeout-ms N]
  plan   print the cleanup plan (read-only); --exact-bloat measures with pgstattuple when installed
  run    plan and execute it, on N connections with --jobs; --dry-run prints the exact SQL instead
Connection from DATABASE_URL / DB_* / PG* variables. Errors show their code and SQLSTATE (with --json, as fields).
Exit codes: 0 ok (locked relations are skipped), 1 a step or the plan failed, 2 usage or configuration error.`;

interface Args {
  command: 'plan' | 'run';
  dryRun: boolean;
  json: boolean;
  schemas: string[];
  exact: boolean;
  jobs: number;
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
}

function parseArgs(argv: readonly string[]): Args | string {
  const [command, ...rest] = argv;
  if (command !== 'plan' && command !== 'run') return 'expected a command: plan or run';
  const args: Args = { command, dryRun: false, json: false, schemas: [], exact: false, jobs: 1 };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = () => rest[++i];
    if (flag === '--dry-run') args.dryRun = true;
    else if (flag === '--json') args.json = true;
    else if (flag === '--exact-bloat') args.exact = true;
    else if (flag === '--schema') {
      const v = value();
      if (!v) return '--schema needs a name';
      args.schemas.push(v);
    } else if (flag === '--lock-timeout-ms' || flag === '--statement-timeout-ms' || flag === '--jobs') {
      const v = value();
      if (!v || !/^\d+$/.test(v)) return `${flag} needs a whole number`;
      args[flag === '--jobs' ? 'jobs' : flag === '--lock-timeout-ms' ? 'lockTimeoutMs' : 'statementTimeoutMs'] = Number(v);
    } else return 'unknown argument';
  }
  return args;
}

function bar(percent: number | null): string {
  const filled = percent === null ? 0 : Math.round(percent / 5);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${percent === null ? '  ?' : String(Math.round(percent)).padStart(3)}%`;
}

/** `LOCK_NOT_AVAILABLE (SQLSTATE 55P03): canceling statement due to lock timeout`. */
function describeError(err: unknown): string {
  if (!AccountDbError.is(err)) return err instanceof Error ? err.message : String(err);
  const sqlstate = (err as { sqlstate?: string }).sqlstate;
  return `${err.code}${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}: ${err.message}`;
}

function describeResult(r: CleanupStepResult): string {
  const status = r.status === 'skipped' ? `skipped (${r.skipReason})` : r.status;
  return `${status.padEnd(17)} ${r.sql ?? r.step.sql}${r.error ? ` — ${describeError(r.error)}` : ''}`;
}

// An error as its own fields (name, code, sqlstate, REINDEX leftovers, ...) and message; `detail`, which
// may hold row values, is not enumerable and stays out.
const toJson = (value: unknown) => JSON.stringify(value, (_, v) => (AccountDbError.is(v) ? { ...v, message: v.message } : v), 2);

/** `accountdb-maintenance plan|run`: returns the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = { env: process.env, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    io.stderr.write(`${args}\n${USAGE}\n`);
    return 2;
  }
  let pool: Pool;
  try {
    // A VACUUM is silent on the wire while it works: no silence bound unless the user sets one.
    // One connection per job, one more for progress reads.
    const max = String(args.jobs + 1);
    pool = createPool(loadConfig({ DB_QUERY_TIMEOUT_MS: '0', ...io.env, DB_MAX_CONNECTIONS: max, DB_MIN_CONNECTIONS: '0' }));
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const tty = io.stdout.isTTY === true && !args.json;
  try {
    const plan: CleanupPlan = await planCleanup(pool, {
      ...(args.schemas.length > 0 && { schemas: args.schemas }),
      bloat: args.exact ? 'exact' : 'estimate',
    });
    if (args.command === 'plan') {
      if (args.json) io.stdout.write(`${toJson(plan)}\n`);
      else if (plan.steps.length === 0) io.stdout.write('Nothing to do.\n');
      else for (const s of plan.steps) io.stdout.write(`${s.action.padEnd(13)} ${s.relation}: ${s.reason}\n`);
      return 0;
    }
    const onProgress = (e: CleanupEvent) => {
      if (e.type === 'progress' && tty)
        io.stdout.write(`\r${bar(e.percent)} ${e.index + 1}/${e.total} ${e.step.relation} ${e.phase}\x1b[K`);
      else if (e.type === 'step-end' && !args.json)
        io.stdout.write(`${tty ? '\r\x1b[K' : ''}${e.index + 1}/${e.total} ${describeResult(e.result)}\n`);
    };
    const report = await cleanupDatabase(pool, {
      plan,
      dryRun: args.dryRun,
      jobs: args.jobs,
      onProgress,
      progressIntervalMs: 250,
      ...(args.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: args.lockTimeoutMs }),
      ...(args.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: args.statementTimeoutMs }),
    });
    if (args.json) io.stdout.write(`${toJson(report)}\n`);
    else if (args.dryRun)
      for (const r of report.results) io.stdout.write(`${r.sql ?? `-- ${r.step.relation}: ${r.skipReason}`};\n`);
    else io.stdout.write(`${report.done} done, ${report.skipped} skipped, ${report.failed} failed\n`);
    return report.failed > 0 ? 1 : 0;
  } catch (err) {
    io.stderr.write(`${describeError(err)}\n`);
    if (args.json) io.stdout.write(`${toJson({ error: err })}\n`);
    return err instanceof MaintenanceInputError ? 2 : 1;
  } finally {
    await pool.close();
  }
}
