import { MaintenanceInputError } from './errors.js';
import { type MaintenanceTarget, typed } from './runner.js';

/** A table as the catalog names it. */
export interface TableRef {
  readonly schema: string;
  readonly name: string;
  /** Quoted and schema-qualified by the server (`format('%I.%I')`), e.g. `app."Users"`. */
  readonly qualified: string;
}

/** Filters of {@link getTableNames}. Patterns are SQL `LIKE` patterns matched against the bare table name. */
export interface TableFilter {
  /** Schemas to list. Default: every schema except `pg_catalog`, `information_schema`, TOAST and temporary ones. */
  readonly schemas?: readonly string[];
  /** Keep only tables whose name matches one of these `LIKE` patterns. */
  readonly include?: readonly string[];
  /** Drop tables whose name matches one of these `LIKE` patterns. */
  readonly exclude?: readonly string[];
}

function checkList(value: unknown, field: string): readonly string[] | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0 || v.includes('\0')))
    throw new MaintenanceInputError(field, 'must be an array of non-empty strings without NUL');
  return value;
}

/** Validate a {@link TableFilter}. */
export function checkTableFilter(filter: unknown): {
  schemas: readonly string[] | null;
  include: readonly string[] | null;
  exclude: readonly string[] | null;
} {
  if (filter === undefined) return { schemas: null, include: null, exclude: null };
  if (typeof filter !== 'object' || filter === null) throw new MaintenanceInputError('filter', 'must be an object');
  const f = filter as TableFilter;
  return {
    schemas: checkList(f.schemas, 'schemas'),
    include: checkList(f.include, 'include'),
    exclude: checkList(f.exclude, 'exclude'),
  };
}

/** The filter as SQL over `n` (pg_namespace) and `c` (pg_class) with parameters `$1..$3`; text fixed, values bound. */
export const TABLE_FILTER_SQL = `(case when $1::text[] is null
          then n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
          else n.nspname = any($1::text[]) end)
   and ($2::text[] is null or c.relname like any($2::text[]))
   and ($3::text[] is null or not c.relname like any($3::text[]))`;

/**
 * The tables (ordinary and partitioned) in the chosen schemas (the seed's `get_table_names`), in one
 * statement, sorted by schema and name. Filters are bound parameters.
 */
export async function getTableNames(db: MaintenanceTarget, filter?: TableFilter): Promise<TableRef[]> {
  const f = checkTableFilter(filter);
  const { rows } = await db
    .query<TableRef>(
      `select n.nspname as schema, c.relname as name, format('%I.%I', n.nspname, c.relname) as qualified
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and ${TABLE_FILTER_SQL}
      order by n.nspname, c.relname`,
      [f.schemas, f.include, f.exclude],
    )
    .catch(typed);
  return rows.map((r) => ({ schema: r.schema, name: r.name, qualified: r.qualified }));
}
