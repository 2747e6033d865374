import { ConfigError, type ConfigProblem } from '@accountdb/pool';

/** Options every statistics function accepts. All optional; defaults in brackets. */
export interface StatsOptions {
  /** Only these schemas (exact catalog names). [every schema that is not excluded] */
  readonly includeSchemas?: readonly string[];
  /** Leave these schemas out (exact catalog names). [none beyond the system schemas] */
  readonly excludeSchemas?: readonly string[];
  /**
   * Include `pg_catalog`, `information_schema`, `pg_toast` and temporary schemas. [false] A system
   * schema named in `includeSchemas` is included either way.
   */
  readonly includeSystemSchemas?: boolean;
  /** Bloat figures: `estimate` from the planner's statistics, or `exact` by scanning with pgstattuple. [`estimate`] */
  readonly bloat?: 'estimate' | 'exact';
  /**
   * Sizes in bytes: `exact` asks the server for each relation's files (`pg_table_size`,
   * `pg_relation_size`, `pg_database_size`), or `estimate` reads page counts from the catalog
   * (`relpages` × block size: no file is touched, but the counts are as of the last VACUUM, ANALYZE
   * or CREATE INDEX, and leave out free space and visibility maps). [`exact`]
   */
  readonly sizes?: 'estimate' | 'exact';
  /** Count rows with `count(*)` per table (one statement for all tables) instead of the catalog estimate. [false] */
  readonly exactRowCounts?: boolean;
  /** Server-side statement timeout for exact row counts, ms. [10,000] */
  readonly exactRowCountTimeoutMs?: number;
  /** Queries and transactions running at least this long are "long running", ms. [60,000] */
  readonly longRunningMs?: number;
  /** Most rows in top-N lists (query stats, oldest tables by transaction age). [50] */
  readonly limit?: number;
}

/** Options after validation. */
export interface ResolvedStatsOptions {
  readonly includeSchemas: readonly string[] | null;
  readonly excludeSchemas: readonly string[];
  readonly includeSystemSchemas: boolean;
  readonly bloat: 'estimate' | 'exact';
  readonly sizes: 'estimate' | 'exact';
  readonly exactRowCounts: boolean;
  readonly exactRowCountTimeoutMs: number;
  readonly longRunningMs: number;
  readonly limit: number;
}

const KNOWN = new Set([
  'includeSchemas',
  'excludeSchemas',
  'includeSystemSchemas',
  'bloat',
  'sizes',
  'exactRowCounts',
  'exactRowCountTimeoutMs',
  'longRunningMs',
  'limit',
]);
const MAX_NAME_BYTES = 63;

function names(value: unknown, variable: string, problems: ConfigProblem[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    problems.push({ variable, message: 'must be an array of schema names' });
    return undefined;
  }
  const ok = value.filter(
    (v): v is string => typeof v === 'string' && v.length > 0 && !v.includes('\0') && Buffer.byteLength(v) <= MAX_NAME_BYTES,
  );
  if (ok.length !== value.length)
    problems.push({ variable, message: 'each entry must be a non-empty string of at most 63 bytes without NUL' });
  return ok;
}

function integer(
  value: unknown,
  variable: string,
  min: number,
  max: number,
  fallback: number,
  problems: ConfigProblem[],
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push({ variable, message: `must be an integer from ${min} to ${max}` });
    return fallback;
  }
  return value;
}

function estimateOrExact(value: unknown, variable: string, fallback: 'estimate' | 'exact', problems: ConfigProblem[]) {
  if (value === undefined) return fallback;
  if (value === 'estimate' || value === 'exact') return value;
  problems.push({ variable, message: 'must be "estimate" or "exact"' });
  return fallback;
}

function flag(value: unknown, variable: string, problems: ConfigProblem[]): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') problems.push({ variable, message: 'must be true or false' });
  return value === true;
}

/** Validate {@link StatsOptions} before any SQL; throws `ConfigError` listing every problem at once. */
export function resolveStatsOptions(options: StatsOptions = {}): ResolvedStatsOptions {
  const problems: ConfigProblem[] = [];
  if (typeof options !== 'object' || options === null)
    throw new ConfigError([{ variable: 'options', message: 'must be an object' }]);
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) problems.push({ variable: key, message: 'is not a stats option' });
  const includeSchemas = names(options.includeSchemas, 'includeSchemas', problems);
  if (includeSchemas?.length === 0)
    problems.push({ variable: 'includeSchemas', message: 'must name at least one schema when given' });
  const excludeSchemas = names(options.excludeSchemas, 'excludeSchemas', problems) ?? [];
  const resolved: ResolvedStatsOptions = {
    includeSchemas: includeSchemas ?? null,
    excludeSchemas,
    includeSystemSchemas: flag(options.includeSystemSchemas, 'includeSystemSchemas', problems),
    bloat: estimateOrExact(options.bloat, 'bloat', 'estimate', problems),
    sizes: estimateOrExact(options.sizes, 'sizes', 'exact', problems),
    exactRowCounts: flag(options.exactRowCounts, 'exactRowCounts', problems),
    exactRowCountTimeoutMs: integer(options.exactRowCountTimeoutMs, 'exactRowCountTimeoutMs', 1, 3_600_000, 10_000, problems),
    longRunningMs: integer(options.longRunningMs, 'longRunningMs', 0, 86_400_000 * 365, 60_000, problems),
    limit: integer(options.limit, 'limit', 1, 100_000, 50, problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(resolved);
}
