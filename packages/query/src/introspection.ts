import type { Queryable } from '@accountdb/pool';
import { toDatabaseError, UndefinedTableError } from '@accountdb/pool';
import { parseColumnName, parseTableName, type TableName } from './names.js';

/** Relation kinds that have columns and can be queried like a table. */
const TABLE_KINDS = `('r','p','v','m','f')`;

/**
 * Resolves `$1` (schema or null) / `$2` (name) to at most one relation, as PostgreSQL would: an
 * unqualified name is the one visible through `search_path`.
 */
const RESOLVE = `
  select c.oid, n.nspname, c.relname, c.relkind, c.reltuples, c.relrowsecurity, c.relforcerowsecurity
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relname = $2 and c.relkind in ${TABLE_KINDS}
    and case when $1::text is null then pg_catalog.pg_table_is_visible(c.oid) else n.nspname = $1::text end`;

/** What kind of relation a name resolved to. */
export type RelationKind = 'table' | 'partitioned table' | 'view' | 'materialized view' | 'foreign table';

const KINDS: Record<string, RelationKind> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
};

/** Referential action of a foreign key. */
export type ForeignKeyAction = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

const ACTIONS: Record<string, ForeignKeyAction> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

/** One column of a table. */
export interface ColumnInfo {
  readonly name: string;
  /** As `format_type` prints it, e.g. `character varying(255)`, `timestamp with time zone`. */
  readonly type: string;
  readonly nullable: boolean;
  /** The default expression as SQL text, or null. */
  readonly default: string | null;
  /** 1-based `attnum`; dropped columns leave gaps. */
  readonly position: number;
}

/** One index on a table. */
export interface IndexInfo {
  readonly name: string;
  /** Key columns in order; `null` for an expression key. */
  readonly columns: readonly (string | null)[];
  readonly unique: boolean;
  readonly primary: boolean;
  /** False while a `CREATE INDEX CONCURRENTLY` is unfinished or failed. */
  readonly valid: boolean;
  /** `pg_get_indexdef`: the full `CREATE INDEX` statement. */
  readonly definition: string;
}

/** One foreign key from this table. */
export interface ForeignKeyInfo {
  readonly name: string;
  readonly columns: readonly string[];
  readonly referencedSchema: string;
  readonly referencedTable: string;
  readonly referencedColumns: readonly string[];
  readonly onUpdate: ForeignKeyAction;
  readonly onDelete: ForeignKeyAction;
  /** `pg_get_constraintdef`, e.g. `FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE`. */
  readonly definition: string;
}

/** Everything {@link getTableInfo} reports about a table (seed `get_table_info`, extended). */
export interface TableInfo {
  readonly schema: string;
  readonly name: string;
  readonly kind: RelationKind;
  /** Columns in `position` order. */
  readonly columns: readonly ColumnInfo[];
  /** Primary key columns in key order, or null when there is none. */
  readonly primaryKey: readonly string[] | null;
  /** Indexes by name. */
  readonly indexes: readonly IndexInfo[];
  /** Foreign keys by name. */
  readonly foreignKeys: readonly ForeignKeyInfo[];
  /** `pg_class.reltuples`: the planner's estimate; null when the table was never vacuumed or analyzed. */
  readonly estimatedRows: number | null;
  /** `pg_total_relation_size`: heap + indexes + TOAST, bytes. */
  readonly totalBytes: number;
  /** Row-level security is enabled (`ALTER TABLE ... ENABLE ROW LEVEL SECURITY`). */
  readonly rlsEnabled: boolean;
  /** ... and forced, so it also applies to the table owner. */
  readonly rlsForced: boolean;
}

async function run<R extends Record<string, unknown>>(db: Queryable, text: string, values: unknown[]): Promise<R[]> {
  try {
    return (await db.query<R>(text, values)).rows;
  } catch (err) {
    throw toDatabaseError(err);
  }
}

/**
 * Whether a table, view, materialized view or foreign table with this name exists (seed
 * `table_exists`). The name is parsed client-side (see {@link TableName}) and looked up in
 * `pg_class` with bound parameters; a bad name throws `InvalidIdentifierError` before any SQL runs.
 */
export async function tableExists(db: Queryable, name: TableName): Promise<boolean> {
  const { schema, name: relname } = parseTableName(name);
  const rows = await run<{ found: boolean }>(db, `select exists (${RESOLVE}) as found`, [schema, relname]);
  return rows[0]?.found === true;
}

/**
 * Whether `table` has a (non-dropped) column called `column` (seed `column_exists`). False when the
 * table does not exist. Both names follow SQL rules: unquoted folds to lower case, quoted is literal.
 */
export async function columnExists(db: Queryable, table: TableName, column: string): Promise<boolean> {
  const { schema, name } = parseTableName(table);
  const attname = parseColumnName(column);
  const rows = await run<{ found: boolean }>(
    db,
    `with t as (${RESOLVE})
     select exists (
       select 1 from pg_catalog.pg_attribute a join t on a.attrelid = t.oid
       where a.attname = $3 and a.attnum > 0 and not a.attisdropped
     ) as found`,
    [schema, name, attname],
  );
  return rows[0]?.found === true;
}

const TABLE_INFO = `
with t as (${RESOLVE})
select t.nspname as schema, t.relname as name, t.relkind as kind,
  case when t.reltuples < 0 then null else t.reltuples::float8 end as estimated_rows,
  pg_catalog.pg_total_relation_size(t.oid)::text as total_bytes,
  t.relrowsecurity as rls_enabled, t.relforcerowsecurity as rls_forced,
  (select coalesce(json_agg(json_build_object(
      'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'nullable', not a.attnotnull,
      'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid), 'position', a.attnum) order by a.attnum), '[]')
   from pg_catalog.pg_attribute a
   left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
   where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped) as columns,
  (select json_agg(a.attname order by k.ord)
   from pg_catalog.pg_constraint con
   cross join unnest(con.conkey) with ordinality k(attnum, ord)
   join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
   where con.conrelid = t.oid and con.contype = 'p') as primary_key,
  (select coalesce(json_agg(json_build_object(
      'name', ic.relname, 'unique', i.indisunique, 'primary', i.indisprimary, 'valid', i.indisvalid,
      'definition', pg_catalog.pg_get_indexdef(i.indexrelid),
      'columns', (select json_agg(a.attname order by k.ord)
                  from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                  left join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                  where k.ord <= i.indnkeyatts)) order by ic.relname), '[]')
   from pg_catalog.pg_index i join pg_catalog.pg_class ic on ic.oid = i.indexrelid
   where i.indrelid = t.oid) as indexes,
  (select coalesce(json_agg(json_build_object(
      'name', con.conname, 'referencedSchema', rn.nspname, 'referencedTable', rc.relname,
      'onUpdate', con.confupdtype, 'onDelete', con.confdeltype, 'definition', pg_catalog.pg_get_constraintdef(con.oid),
      'columns', (select json_agg(a.attname order by k.ord) from unnest(con.conkey) with ordinality k(attnum, ord)
                  join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum),
      'referencedColumns', (select json_agg(a.attname order by k.ord) from unnest(con.confkey) with ordinality k(attnum, ord)
                  join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum)
    ) order by con.conname), '[]')
   from pg_catalog.pg_constraint con
   join pg_catalog.pg_class rc on rc.oid = con.confrelid
   join pg_catalog.pg_namespace rn on rn.oid = rc.relnamespace
   where con.conrelid = t.oid and con.contype = 'f') as foreign_keys
from t`;

interface TableInfoRow extends Record<string, unknown> {
  schema: string;
  name: string;
  kind: string;
  estimated_rows: number | null;
  total_bytes: string;
  rls_enabled: boolean;
  rls_forced: boolean;
  columns: ColumnInfo[];
  primary_key: string[] | null;
  indexes: IndexInfo[];
  foreign_keys: (Omit<ForeignKeyInfo, 'onUpdate' | 'onDelete'> & { onUpdate: string; onDelete: string })[];
}

/**
 * Columns, primary key, indexes, foreign keys, estimated rows, total size and RLS state of one table
 * (seed `get_table_info`), in one round trip. Throws {@link UndefinedTableError} when the name does
 * not resolve, `InvalidIdentifierError` for a name that cannot be one.
 */
export async function getTableInfo(db: Queryable, name: TableName): Promise<TableInfo> {
  const parsed = parseTableName(name);
  const [row] = await run<TableInfoRow>(db, TABLE_INFO, [parsed.schema, parsed.name]);
  if (!row) {
    const shown =
      parsed.schema === null ? JSON.stringify(parsed.name) : `${JSON.stringify(parsed.schema)}.${JSON.stringify(parsed.name)}`;
    throw new UndefinedTableError(`Table ${shown} does not exist or is not visible`, {
      sqlstate: '42P01',
      schema: parsed.schema ?? undefined,
      table: parsed.name,
    });
  }
  return {
    schema: row.schema,
    name: row.name,
    kind: KINDS[row.kind] ?? 'table',
    columns: row.columns,
    primaryKey: row.primary_key,
    indexes: row.indexes,
    foreignKeys: row.foreign_keys.map((fk) => ({
      ...fk,
      onUpdate: ACTIONS[fk.onUpdate] ?? 'no action',
      onDelete: ACTIONS[fk.onDelete] ?? 'no action',
    })),
    estimatedRows: row.estimated_rows,
    totalBytes: Number(row.total_bytes),
    rlsEnabled: row.rls_enabled,
    rlsForced: row.rls_forced,
  };
}
