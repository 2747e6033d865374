import type * as pg from 'libpg-query';
import { MigrationFileError } from './errors.js';
import { type MigrationFile, type ParsedStatement, parseStatements } from './files.js';
import { quoteIdentifier } from './history.js';

/** What a lint finding is about. */
export type LintRule =
  | 'parse-error'
  | 'index-not-concurrent'
  | 'add-column-not-null'
  | 'alter-column-type'
  | 'constraint-not-valid'
  | 'drop-column'
  | 'drop-table'
  | 'concurrently-in-transaction'
  | 'lock-timeout';

/** A risky statement in a pending migration (or a file PostgreSQL cannot parse). */
export interface LintFinding {
  readonly file: string;
  /** 1-based line of the statement (or of the parse error). */
  readonly line: number;
  readonly rule: LintRule;
  /** `error` for a parse error, and for every finding with `strict`; `warning` otherwise. */
  readonly severity: 'warning' | 'error';
  readonly message: string;
  /** How to do it safely. */
  readonly fix: string;
}

/** Lint results and the parsed statements of each file (reused to run non-transactional files). */
export interface LintResult {
  readonly findings: LintFinding[];
  readonly statements: Map<string, ParsedStatement[]>;
}

const FIX = {
  'index-not-concurrent': 'use CREATE INDEX CONCURRENTLY in a file with the header -- migrate:no-transaction',
  'add-column-not-null':
    'add it with a DEFAULT (instant since PostgreSQL 11), or nullable: backfill, add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL',
  'alter-column-type': 'add a new column, backfill it in batches, move readers and writers to it, then drop the old one',
  'constraint-not-valid': 'add it NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration (a weaker lock)',
  'drop-column': 'first deploy code that no longer uses the column, then drop it in a later migration',
  'drop-table': 'first deploy code that no longer uses the table, then drop it in a later migration',
  'concurrently-in-transaction': 'add the header -- migrate:no-transaction (and keep only such statements in that file)',
  'lock-timeout': 'add the header -- migrate:lock-timeout=5s (or SET lock_timeout before the statement)',
} as const;

/** ALTER TABLE subcommands that take a lock weaker than ACCESS EXCLUSIVE. */
const WEAKER = new Set([
  'AT_ValidateConstraint',
  'AT_SetStatistics',
  'AT_SetOptions',
  'AT_ResetOptions',
  'AT_ClusterOn',
  'AT_DropCluster',
  'AT_AttachPartition',
  'AT_DetachPartitionFinalize',
]);

/** Column constraints that give a new column its values. */
const VALUED = new Set(['CONSTR_DEFAULT', 'CONSTR_IDENTITY', 'CONSTR_GENERATED']);

const same = (a: pg.RangeVar, b: pg.RangeVar) =>
  a.relname === b.relname && (!a.schemaname || !b.schemaname || a.schemaname === b.schemaname);
const nameOf = (r: pg.RangeVar) => (r.schemaname ? `${r.schemaname}.${r.relname}` : (r.relname ?? '?'));
const unpack = (node: pg.Node | undefined) => Object.entries(node ?? {})[0] as [string, unknown] | undefined;
const isZero = (value: string) => /^\s*0+(\.0*)?\s*(us|ms|s|min|h|d)?\s*$/.test(value);
const defnames = (list: unknown) =>
  ((list as pg.Node[] | undefined) ?? []).map((o) => (o as { DefElem?: { defname?: string } }).DefElem?.defname);

/** The lock_timeout a `SET`, `RESET` or `SELECT set_config('lock_timeout', ...)` leaves: true = none. */
function lockTimeoutChange(kind: string, body: unknown): boolean | undefined {
  if (kind === 'VariableSetStmt') {
    const s = body as pg.VariableSetStmt;
    if (s.name !== 'lock_timeout') return undefined;
    if (s.kind !== 'VAR_SET_VALUE') return true; // RESET / DEFAULT: the server's default, usually none
    const value = (s.args?.[0] as { A_Const?: { ival?: { ival?: number }; sval?: { sval?: string } } })?.A_Const;
    return value?.sval ? isZero(value.sval.sval ?? '') : (value?.ival?.ival ?? 0) === 0;
  }
  if (kind !== 'SelectStmt') return undefined;
  for (const target of (body as pg.SelectStmt).targetList ?? []) {
    const call = (target as { ResTarget?: { val?: { FuncCall?: { funcname?: pg.Node[]; args?: pg.Node[] } } } }).ResTarget?.val
      ?.FuncCall;
    const name = (call?.funcname?.at(-1) as { String?: { sval?: string } })?.String?.sval;
    const args = call?.args?.map((a) => (a as { A_Const?: { sval?: { sval?: string } } }).A_Const?.sval?.sval);
    if (name === 'set_config' && args?.[0] === 'lock_timeout' && args[1] !== undefined) return isZero(args[1]);
  }
  return undefined;
}

/** The table a statement takes an ACCESS EXCLUSIVE lock on (`null`: some relation), or undefined when it takes none. */
function exclusiveTarget(kind: string, body: Record<string, unknown>): pg.RangeVar | null | undefined {
  const first = (list: unknown) => ((list as pg.Node[] | undefined)?.[0] as { RangeVar?: pg.RangeVar } | undefined)?.RangeVar;
  switch (kind) {
    case 'AlterTableStmt': {
      const s = body as pg.AlterTableStmt;
      const strong = (s.cmds ?? []).some((c) => {
        const cmd = (c as { AlterTableCmd: pg.AlterTableCmd }).AlterTableCmd;
        const fk = (cmd.def as { Constraint?: pg.Constraint })?.Constraint?.contype === 'CONSTR_FOREIGN';
        return !(WEAKER.has(cmd.subtype ?? '') || /Trig/.test(cmd.subtype ?? '') || fk);
      });
      return strong ? (s.relation ?? null) : undefined;
    }
    case 'RenameStmt':
    case 'RefreshMatViewStmt':
    case 'ReindexStmt':
    case 'ClusterStmt':
      if (body.concurrent || defnames(body.params).includes('concurrently')) return undefined;
      return kind === 'RenameStmt' && !body.relation ? undefined : ((body.relation as pg.RangeVar | undefined) ?? null);
    case 'DropStmt':
      return body.concurrent || !/TABLE|INDEX|VIEW|SEQUENCE|POLICY|TRIGGER|RULE/.test(String(body.removeType)) ? undefined : null;
    case 'TruncateStmt':
      return first(body.relations) ?? null;
    case 'LockStmt':
      return body.mode === 8 ? (first(body.relations) ?? null) : undefined;
    case 'VacuumStmt':
      return defnames(body.options).includes('full')
        ? (((body.rels as pg.Node[] | undefined)?.[0] as { VacuumRelation?: { relation?: pg.RangeVar } })?.VacuumRelation
            ?.relation ?? null)
        : undefined;
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      return (body.table as pg.RangeVar | undefined) ?? null;
    case 'ViewStmt':
      return body.replace ? ((body.view as pg.RangeVar | undefined) ?? null) : undefined;
    default:
      return undefined;
  }
}

/**
 * Lint pending migrations with PostgreSQL's parse tree. `existing` answers which of the given names (quoted
 * `"schema"."table"` text) are tables in the database now; operations on a table the same file creates are fine.
 */
export async function lintMigrations(
  files: readonly MigrationFile[],
  opts: { readonly lockTimeoutMs: number; readonly strict: boolean },
  existing: (names: string[]) => Promise<Set<string>>,
): Promise<LintResult> {
  const findings: LintFinding[] = [];
  const statements = new Map<string, ParsedStatement[]>();
  // Findings that stand only if their table exists before the file: created by an earlier file, or in the database.
  const candidates: { finding: LintFinding; table: pg.RangeVar; earlier: pg.RangeVar[] }[] = [];
  const created: pg.RangeVar[] = [];
  const severity = opts.strict ? 'error' : 'warning';
  for (const f of files) {
    let parsed: ParsedStatement[];
    try {
      parsed = await parseStatements(f.file, f.sql);
    } catch (err) {
      if (!(err instanceof MigrationFileError)) throw err;
      const fix = 'fix the SQL (PostgreSQL 18 grammar)';
      findings.push({ file: f.file, line: err.line ?? 1, rule: 'parse-error', severity: 'error', message: err.reason, fix });
      continue;
    }
    statements.set(f.file, parsed);
    const earlier = [...created];
    const fresh = (r: pg.RangeVar | null | undefined) => !!r && created.slice(earlier.length).some((c) => same(c, r));
    let noLockTimeout = (f.header.lockTimeoutMs ?? opts.lockTimeoutMs) === 0;
    let lockTimeoutReported = false;
    for (const st of parsed) {
      const [kind, raw] = unpack(st.node) ?? ['', {}];
      const body = raw as Record<string, unknown>;
      const what = kind.replace(/Stmt$/, '');
      const add = (rule: keyof typeof FIX, message: string, location?: number, ifExists?: pg.RangeVar) => {
        const finding = { file: f.file, line: st.lineAt(location), rule, severity, message, fix: FIX[rule] } as const;
        if (ifExists) candidates.push({ finding, table: ifExists, earlier });
        else findings.push(finding);
      };
      noLockTimeout = lockTimeoutChange(kind, body) ?? noLockTimeout;
      const target = exclusiveTarget(kind, body);
      if (target !== undefined && noLockTimeout && !lockTimeoutReported && !fresh(target)) {
        lockTimeoutReported = true;
        const on = target ? nameOf(target) : 'the relation';
        add('lock-timeout', `${what} takes an ACCESS EXCLUSIVE lock with no lock_timeout: queued, it blocks all of ${on}`);
      }
      if (kind === 'CreateStmt') created.push((body as { relation: pg.RangeVar }).relation);
      if (kind === 'CreateTableAsStmt') created.push((body as { into: { rel: pg.RangeVar } }).into.rel);
      const concurrently =
        (/^(IndexStmt|DropStmt)$/.test(kind) && body.concurrent === true) ||
        (kind === 'ReindexStmt' && defnames((body as pg.ReindexStmt).params).includes('concurrently'));
      if (f.header.transaction && concurrently)
        add('concurrently-in-transaction', `${what.toUpperCase()} CONCURRENTLY cannot run inside a transaction block`);
      const index = body as pg.IndexStmt;
      if (kind === 'IndexStmt' && !index.concurrent && index.relation && !fresh(index.relation)) {
        const message = `CREATE INDEX without CONCURRENTLY blocks writes to ${nameOf(index.relation)} while it builds`;
        add('index-not-concurrent', message, -1, index.relation);
      }
      if (kind === 'DropStmt' && (body as pg.DropStmt).removeType === 'OBJECT_TABLE') {
        const names = ((body as pg.DropStmt).objects ?? []).map((o) =>
          ((o as { List?: { items?: pg.Node[] } }).List?.items ?? []).map(
            (i) => (i as { String?: { sval?: string } }).String?.sval,
          ),
        );
        const tables = names.map((n) => n.join('.')).join(', ');
        add('drop-table', `DROP TABLE ${tables}: code still using it fails once this is applied`);
      }
      const alter = body as pg.AlterTableStmt;
      if (kind !== 'AlterTableStmt' || fresh(alter.relation)) continue;
      const table = nameOf(alter.relation ?? {});
      for (const c of alter.cmds ?? []) {
        const cmd = (c as { AlterTableCmd: pg.AlterTableCmd }).AlterTableCmd;
        const column = (cmd.def as { ColumnDef?: pg.ColumnDef })?.ColumnDef;
        const constraint = (cmd.def as { Constraint?: pg.Constraint })?.Constraint;
        const types = (column?.constraints ?? []).map((k) => (k as { Constraint: pg.Constraint }).Constraint.contype ?? '');
        const validated = /CHECK|FOREIGN/.test(constraint?.contype ?? '') && !constraint?.skip_validation;
        if (cmd.subtype === 'AT_AddColumn' && types.includes('CONSTR_NOTNULL') && !types.some((t) => VALUED.has(t))) {
          const message = `ADD COLUMN ${column?.colname} NOT NULL without a default fails once ${table} has rows`;
          add('add-column-not-null', message, column?.location);
        }
        if (cmd.subtype === 'AT_AlterColumnType') {
          const message = `ALTER COLUMN ${cmd.name} TYPE rewrites ${table} and its indexes under ACCESS EXCLUSIVE`;
          add('alter-column-type', message, column?.location);
        }
        if (cmd.subtype === 'AT_AddConstraint' && validated) {
          const name = [constraint?.contype === 'CONSTR_CHECK' ? 'CHECK' : 'FOREIGN KEY', constraint?.conname].filter(Boolean);
          add(
            'constraint-not-valid',
            `ADD ${name.join(' ')} without NOT VALID scans all of ${table} under its lock`,
            constraint?.location,
          );
        }
        if (cmd.subtype === 'AT_DropColumn')
          add('drop-column', `DROP COLUMN ${cmd.name} on ${table}: code still using it fails once this is applied`);
      }
    }
  }
  const quoted = (r: pg.RangeVar) => (r.schemaname ? `${quoteIdentifier(r.schemaname)}.` : '') + quoteIdentifier(r.relname ?? '');
  const unresolved = candidates.filter((c) => !c.earlier.some((r) => same(r, c.table)));
  const present = unresolved.length > 0 ? await existing([...new Set(unresolved.map((c) => quoted(c.table)))]) : new Set();
  for (const c of candidates) if (!unresolved.includes(c) || present.has(quoted(c.table))) findings.push(c.finding);
  const order = new Map(files.map((f, i) => [f.file, i]));
  findings.sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line);
  return { findings, statements };
}

/** One line per finding: `file:line: warning [rule] message; fix: ...`. */
export function formatFinding(f: LintFinding): string {
  return `${f.file}:${f.line}: ${f.severity} [${f.rule}] ${f.message}; fix: ${f.fix}`;
}
