import { MaintenanceInputError, UnsupportedOptionError } from './errors.js';
import { checkIdentifier } from './names.js';

/** Options of `VACUUM`. Each maps to the server option of the same name; omitted = the server's default. */
export interface VacuumOptions {
  /** `FULL`: rewrite the table (ACCESS EXCLUSIVE lock for the whole run). Never implied. */
  readonly full?: boolean;
  /** `FREEZE`: aggressive freezing of tuples. */
  readonly freeze?: boolean;
  /** `VERBOSE`: the server's report arrives as notices (logged at debug). */
  readonly verbose?: boolean;
  /** `ANALYZE`: update planner statistics too. */
  readonly analyze?: boolean;
  /** `DISABLE_PAGE_SKIPPING`. */
  readonly disablePageSkipping?: boolean;
  /** `SKIP_LOCKED` (12+): skip the table instead of waiting when it is locked; the result is `skipped`. */
  readonly skipLocked?: boolean;
  /** `INDEX_CLEANUP` (12+; `'auto'` 14+). */
  readonly indexCleanup?: boolean | 'auto';
  /** `PROCESS_MAIN` (16+). */
  readonly processMain?: boolean;
  /** `PROCESS_TOAST` (14+). */
  readonly processToast?: boolean;
  /** `TRUNCATE` (12+): truncate empty pages at the end of the table. */
  readonly truncate?: boolean;
  /** `PARALLEL n` (13+): parallel workers for index vacuuming, 0-1024. */
  readonly parallel?: number;
  /** `SKIP_DATABASE_STATS` (16+). */
  readonly skipDatabaseStats?: boolean;
  /** `BUFFER_USAGE_LIMIT` (16+) in kB: 0 (no limit) or 128-16777216. */
  readonly bufferUsageLimitKb?: number;
}

/** Options of `ANALYZE`. */
export interface AnalyzeOptions {
  readonly verbose?: boolean;
  /** `SKIP_LOCKED` (12+). */
  readonly skipLocked?: boolean;
  /** `BUFFER_USAGE_LIMIT` (16+) in kB. */
  readonly bufferUsageLimitKb?: number;
}

/** Options of `REINDEX`. */
export interface ReindexOptions {
  /**
   * `CONCURRENTLY` (12+). Default **true**: a plain REINDEX blocks writes (and reads using the index)
   * for its whole run, so it must be asked for with `concurrently: false`.
   */
  readonly concurrently?: boolean;
  readonly verbose?: boolean;
  /**
   * When a REINDEX CONCURRENTLY fails it can leave an invalid `*_ccnew` index behind. Default true:
   * drop it (`DROP INDEX CONCURRENTLY`); false: report it in the error only.
   */
  readonly dropInvalidOnFailure?: boolean;
  /**
   * `TABLESPACE` (14+): rebuild the indexes in this tablespace (its exact name, resolved through
   * `pg_tablespace`). Needs CREATE on it, unless it is the database's default tablespace.
   */
  readonly tablespace?: string;
}

/** Options of `TRUNCATE`. */
export interface TruncateOptions {
  /** `RESTART IDENTITY`: reset sequences owned by the table's columns. */
  readonly restartIdentity?: boolean;
  /** `CASCADE`: also truncate tables with foreign keys to it. Only when asked. */
  readonly cascade?: boolean;
}

/** The oldest server this package supports (older ones lack options and progress views it relies on). */
export const MIN_SERVER_VERSION = 130000;

/** One option: its SQL keyword (none: not a statement option), first major version, check and SQL value. */
interface Spec {
  readonly sql?: string;
  readonly since?: number | ((value: unknown) => number);
  /** The problem with a (defined) value, if any. Default: must be a boolean. */
  readonly check?: (value: unknown) => string | undefined;
  /** The value as SQL. Default: TRUE/FALSE. */
  readonly write?: (value: unknown) => string;
}

const int = (min: number, max: number) => (v: unknown) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `must be an integer from ${min} to ${max}`;
const BUFFER_USAGE_LIMIT: Spec = {
  sql: 'BUFFER_USAGE_LIMIT',
  since: 16,
  check: (v) =>
    int(0, 16_777_216)(v) ?? ((v as number) > 0 && (v as number) < 128 ? 'must be 0 or from 128 to 16777216 (kB)' : undefined),
  write: String,
};
const VACUUM: Record<string, Spec> = {
  full: { sql: 'FULL' },
  freeze: { sql: 'FREEZE' },
  verbose: { sql: 'VERBOSE' },
  analyze: { sql: 'ANALYZE' },
  disablePageSkipping: { sql: 'DISABLE_PAGE_SKIPPING' },
  skipLocked: { sql: 'SKIP_LOCKED', since: 12 },
  processMain: { sql: 'PROCESS_MAIN', since: 16 },
  processToast: { sql: 'PROCESS_TOAST', since: 14 },
  truncate: { sql: 'TRUNCATE', since: 12 },
  skipDatabaseStats: { sql: 'SKIP_DATABASE_STATS', since: 16 },
  indexCleanup: {
    sql: 'INDEX_CLEANUP',
    since: (v) => (v === 'auto' ? 14 : 12),
    check: (v) => (typeof v === 'boolean' || v === 'auto' ? undefined : 'must be a boolean or "auto"'),
    write: (v) => (v === 'auto' ? 'AUTO' : v ? 'ON' : 'OFF'),
  },
  parallel: { sql: 'PARALLEL', since: 13, check: int(0, 1024), write: String },
  bufferUsageLimitKb: BUFFER_USAGE_LIMIT,
};
const ANALYZE: Record<string, Spec> = {
  verbose: { sql: 'VERBOSE' },
  skipLocked: VACUUM.skipLocked as Spec,
  bufferUsageLimitKb: BUFFER_USAGE_LIMIT,
};
const REINDEX: Record<string, Spec> = {
  concurrently: {},
  verbose: {},
  dropInvalidOnFailure: {},
  tablespace: { check: (v) => void checkIdentifier(v, 'tablespace') },
};
const TRUNCATE: Record<string, Spec> = { restartIdentity: {}, cascade: {} };

/** Validate options against their specs (no server needed). Throws {@link MaintenanceInputError}. */
function checkOptions<T>(input: unknown, field: string, specs: Record<string, Spec>): T {
  if (input === undefined) return {} as T;
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new MaintenanceInputError(field, 'must be an object');
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(specs, key))
      throw new MaintenanceInputError(field, `has an unknown option (${key.length > 40 ? 'a long key' : JSON.stringify(key)})`);
    const problem =
      value === undefined
        ? undefined
        : (specs[key]?.check ?? ((v) => (typeof v === 'boolean' ? undefined : 'must be a boolean')))(value);
    if (problem) throw new MaintenanceInputError(key, problem);
  }
  return input as T;
}

/** Validate {@link VacuumOptions}, including combinations the server rejects. */
export function checkVacuumOptions(input: unknown): VacuumOptions {
  const o = checkOptions<VacuumOptions>(input, 'vacuum options', VACUUM);
  if (o.full === true) {
    for (const key of ['parallel', 'bufferUsageLimitKb', 'disablePageSkipping'] as const)
      if (o[key] !== undefined && o[key] !== false) throw new MaintenanceInputError(key, 'cannot be combined with full');
    if (o.processToast === false) throw new MaintenanceInputError('processToast', 'cannot be false with full');
  }
  return o;
}

export const checkAnalyzeOptions = (input: unknown) => checkOptions<AnalyzeOptions>(input, 'analyze options', ANALYZE);
export const checkReindexOptions = (input: unknown) => checkOptions<ReindexOptions>(input, 'reindex options', REINDEX);
export const checkTruncateOptions = (input: unknown) => checkOptions<TruncateOptions>(input, 'truncate options', TRUNCATE);

export function requireVersion(option: string, since: number, serverVersion: number): void {
  if (serverVersion < since * 10000) throw new UnsupportedOptionError(option, since, serverVersion);
}

/** Refuse servers older than {@link MIN_SERVER_VERSION}. */
export function requireServer(serverVersion: number): void {
  requireVersion('@accountdb/maintenance', MIN_SERVER_VERSION / 10000, serverVersion);
}

function optionList(items: string[]): string {
  return items.length === 0 ? '' : ` (${items.join(', ')})`;
}

/** ` (KEY value, ...)` for the options given, each gated on the server's version; values come from fixed tables or checked integers. */
function optionsSql(specs: Record<string, Spec>, options: object, serverVersion: number): string {
  const items: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    const spec = specs[key];
    if (value === undefined || !spec?.sql) continue;
    requireVersion(key, typeof spec.since === 'function' ? spec.since(value) : (spec.since ?? 0), serverVersion);
    items.push(`${spec.sql} ${spec.write ? spec.write(value) : value ? 'TRUE' : 'FALSE'}`);
  }
  return optionList(items);
}

/**
 * The VACUUM statement for a relation the catalog named (`qualified` comes from `format('%I.%I')`).
 * Throws {@link UnsupportedOptionError} for options the server's version lacks.
 */
export function vacuumSql(qualified: string, options: VacuumOptions, serverVersion: number): string {
  return `VACUUM${optionsSql(VACUUM, options, serverVersion)} ${qualified}`;
}

/** The ANALYZE statement (see {@link vacuumSql}). */
export function analyzeSql(qualified: string, options: AnalyzeOptions, serverVersion: number): string {
  return `ANALYZE${optionsSql(ANALYZE, options, serverVersion)} ${qualified}`;
}

/** The REINDEX statement; CONCURRENTLY unless `concurrently: false`. `tablespace` is quoted by the server (`format('%I')`). */
export function reindexSql(kind: 'TABLE' | 'INDEX', qualified: string, options: ReindexOptions, tablespace?: string): string {
  const items = [...(options.verbose ? ['VERBOSE'] : []), ...(tablespace ? [`TABLESPACE ${tablespace}`] : [])];
  return `REINDEX${optionList(items)} ${kind}${options.concurrently === false ? '' : ' CONCURRENTLY'} ${qualified}`;
}

/** The TRUNCATE statement. */
export function truncateSql(qualified: string, options: TruncateOptions): string {
  return `TRUNCATE TABLE ${qualified}${options.restartIdentity ? ' RESTART IDENTITY' : ''}${options.cascade ? ' CASCADE' : ''}`;
}
