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

/** Options after validation: every one set, `includeSchemas` null for "all". */
export type ResolvedStatsOptions = Readonly<
  Required<Omit<StatsOptions, 'includeSchemas'>> & { includeSchemas: readonly string[] | null }
>;

const KNOWN = new Set<string>(
  'includeSchemas excludeSchemas includeSystemSchemas bloat sizes exactRowCounts exactRowCountTimeoutMs longRunningMs limit'.split(
    ' ',
  ),
);
const MAX_NAME_BYTES = 63;
const isName = (v: unknown) =>
  typeof v === 'string' && v.length > 0 && !v.includes('\0') && Buffer.byteLength(v) <= MAX_NAME_BYTES;

/** Validate {@link StatsOptions} before any SQL; throws `ConfigError` listing every problem at once. */
export function resolveStatsOptions(options: StatsOptions = {}): ResolvedStatsOptions {
  const problems: ConfigProblem[] = [];
  if (typeof options !== 'object' || options === null)
    throw new ConfigError([{ variable: 'options', message: 'must be an object' }]);
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) problems.push({ variable: key, message: 'is not a stats option' });
  const o = options as Record<string, unknown>;
  function check<T>(variable: string, fallback: T, ok: (v: unknown) => boolean, message: string): T {
    if (o[variable] === undefined || ok(o[variable])) return (o[variable] ?? fallback) as T;
    problems.push({ variable, message });
    return fallback;
  }
  const names = (variable: string) =>
    check<string[] | null>(
      variable,
      null,
      (v) => Array.isArray(v) && v.every(isName),
      'must be an array of non-empty strings of at most 63 bytes without NUL',
    );
  const integer = (variable: string, min: number, max: number, fallback: number) =>
    check(
      variable,
      fallback,
      (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
      `must be an integer from ${min} to ${max}`,
    );
  const flag = (variable: string) => check(variable, false, (v) => typeof v === 'boolean', 'must be true or false');
  const mode = (variable: string, fallback: 'estimate' | 'exact') =>
    check(variable, fallback, (v) => v === 'estimate' || v === 'exact', 'must be "estimate" or "exact"');
  const includeSchemas = names('includeSchemas');
  if (includeSchemas?.length === 0)
    problems.push({ variable: 'includeSchemas', message: 'must name at least one schema when given' });
  const resolved: ResolvedStatsOptions = {
    includeSchemas,
    excludeSchemas: names('excludeSchemas') ?? [],
    includeSystemSchemas: flag('includeSystemSchemas'),
    bloat: mode('bloat', 'estimate'),
    sizes: mode('sizes', 'exact'),
    exactRowCounts: flag('exactRowCounts'),
    exactRowCountTimeoutMs: integer('exactRowCountTimeoutMs', 1, 3_600_000, 10_000),
    longRunningMs: integer('longRunningMs', 0, 86_400_000 * 365, 60_000),
    limit: integer('limit', 1, 100_000, 50),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(resolved);
}
