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

type BoolOption = { readonly key: string; readonly sql: string; readonly since: number };

const VACUUM_BOOLEANS: readonly BoolOption[] = [
  { key: 'full', sql: 'FULL', since: 0 },
  { key: 'freeze', sql: 'FREEZE', since: 0 },
  { key: 'verbose', sql: 'VERBOSE', since: 0 },
  { key: 'analyze', sql: 'ANALYZE', since: 0 },
  { key: 'disablePageSkipping', sql: 'DISABLE_PAGE_SKIPPING', since: 0 },
  { key: 'skipLocked', sql: 'SKIP_LOCKED', since: 12 },
  { key: 'processMain', sql: 'PROCESS_MAIN', since: 16 },
  { key: 'processToast', sql: 'PROCESS_TOAST', since: 14 },
  { key: 'truncate', sql: 'TRUNCATE', since: 12 },
  { key: 'skipDatabaseStats', sql: 'SKIP_DATABASE_STATS', since: 16 },
];
const VACUUM_KEYS = new Set([...VACUUM_BOOLEANS.map((o) => o.key), 'indexCleanup', 'parallel', 'bufferUsageLimitKb']);
const ANALYZE_BOOLEANS = VACUUM_BOOLEANS.filter((o) => o.key === 'verbose' || o.key === 'skipLocked');

/** The oldest server this package supports (older ones lack options and progress views it relies on). */
export const MIN_SERVER_VERSION = 130000;

function checkObject(options: unknown, field: string, keys: ReadonlySet<string>): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new MaintenanceInputError(field, 'must be an object');
  for (const key of Object.keys(options))
    if (!keys.has(key))
      throw new MaintenanceInputError(field, `has an unknown option (${key.length > 40 ? 'a long key' : JSON.stringify(key)})`);
  return options as Record<string, unknown>;
}

function checkBoolean(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new MaintenanceInputError(field, 'must be a boolean');
}

function checkInteger(value: unknown, field: string, min: number, max: number): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max))
    throw new MaintenanceInputError(field, `must be an integer from ${min} to ${max}`);
}

function checkBufferLimit(value: unknown, field: string): void {
  checkInteger(value, field, 0, 16_777_216);
  if (typeof value === 'number' && value > 0 && value < 128)
    throw new MaintenanceInputError(field, 'must be 0 or from 128 to 16777216 (kB)');
}

/** Validate {@link VacuumOptions} (no server needed). Throws {@link MaintenanceInputError}. */
export function checkVacuumOptions(input: unknown): VacuumOptions {
  const o = checkObject(input, 'vacuum options', VACUUM_KEYS);
  for (const { key } of VACUUM_BOOLEANS) checkBoolean(o[key], key);
  if (o.indexCleanup !== undefined && typeof o.indexCleanup !== 'boolean' && o.indexCleanup !== 'auto')
    throw new MaintenanceInputError('indexCleanup', 'must be a boolean or "auto"');
  checkInteger(o.parallel, 'parallel', 0, 1024);
  checkBufferLimit(o.bufferUsageLimitKb, 'bufferUsageLimitKb');
  // Combinations the server rejects, rejected here first.
  if (o.full === true) {
    for (const key of ['parallel', 'bufferUsageLimitKb', 'disablePageSkipping'] as const)
      if (o[key] !== undefined && o[key] !== false) throw new MaintenanceInputError(key, 'cannot be combined with full');
    if (o.processToast === false) throw new MaintenanceInputError('processToast', 'cannot be false with full');
  }
  return o as VacuumOptions;
}

/** Validate {@link AnalyzeOptions}. */
export function checkAnalyzeOptions(input: unknown): AnalyzeOptions {
  const o = checkObject(input, 'analyze options', new Set(['verbose', 'skipLocked', 'bufferUsageLimitKb']));
  checkBoolean(o.verbose, 'verbose');
  checkBoolean(o.skipLocked, 'skipLocked');
  checkBufferLimit(o.bufferUsageLimitKb, 'bufferUsageLimitKb');
  return o as AnalyzeOptions;
}

/** Validate {@link ReindexOptions}. */
export function checkReindexOptions(input: unknown): ReindexOptions {
  const o = checkObject(input, 'reindex options', new Set(['concurrently', 'verbose', 'dropInvalidOnFailure', 'tablespace']));
  for (const key of ['concurrently', 'verbose', 'dropInvalidOnFailure']) checkBoolean(o[key], key);
  if (o.tablespace !== undefined) checkIdentifier(o.tablespace, 'tablespace');
  return o as ReindexOptions;
}

/** Validate {@link TruncateOptions}. */
export function checkTruncateOptions(input: unknown): TruncateOptions {
  const o = checkObject(input, 'truncate options', new Set(['restartIdentity', 'cascade']));
  checkBoolean(o.restartIdentity, 'restartIdentity');
  checkBoolean(o.cascade, 'cascade');
  return o as TruncateOptions;
}

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

function booleans(defs: readonly BoolOption[], o: Record<string, unknown>, serverVersion: number): string[] {
  const items: string[] = [];
  for (const def of defs) {
    const value = o[def.key];
    if (value === undefined) continue;
    requireVersion(def.key, def.since, serverVersion);
    items.push(`${def.sql} ${value ? 'TRUE' : 'FALSE'}`);
  }
  return items;
}

/**
 * The VACUUM statement for a relation the catalog named (`qualified` comes from `format('%I.%I')`).
 * Every other piece comes from a fixed table or is a validated integer. Throws
 * {@link UnsupportedOptionError} for options the server's version lacks.
 */
export function vacuumSql(qualified: string, options: VacuumOptions, serverVersion: number): string {
  const o = options as Record<string, unknown>;
  const items = booleans(VACUUM_BOOLEANS, o, serverVersion);
  if (options.indexCleanup !== undefined) {
    requireVersion('indexCleanup', options.indexCleanup === 'auto' ? 14 : 12, serverVersion);
    items.push(`INDEX_CLEANUP ${options.indexCleanup === 'auto' ? 'AUTO' : options.indexCleanup ? 'ON' : 'OFF'}`);
  }
  if (options.parallel !== undefined) {
    requireVersion('parallel', 13, serverVersion);
    items.push(`PARALLEL ${options.parallel}`);
  }
  if (options.bufferUsageLimitKb !== undefined) {
    requireVersion('bufferUsageLimitKb', 16, serverVersion);
    items.push(`BUFFER_USAGE_LIMIT ${options.bufferUsageLimitKb}`);
  }
  return `VACUUM${optionList(items)} ${qualified}`;
}

/** The ANALYZE statement (see {@link vacuumSql}). */
export function analyzeSql(qualified: string, options: AnalyzeOptions, serverVersion: number): string {
  const items = booleans(ANALYZE_BOOLEANS, options as Record<string, unknown>, serverVersion);
  if (options.bufferUsageLimitKb !== undefined) {
    requireVersion('bufferUsageLimitKb', 16, serverVersion);
    items.push(`BUFFER_USAGE_LIMIT ${options.bufferUsageLimitKb}`);
  }
  return `ANALYZE${optionList(items)} ${qualified}`;
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
