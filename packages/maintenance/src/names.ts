import type { Queryable } from '@accountdb/pool';
import { MaintenanceInputError, MaintenancePermissionError, RelationNotFoundError } from './errors.js';

/** A relation named exactly: no parsing, no case folding. `schema` omitted = resolved through `search_path`. */
export interface QualifiedName {
  readonly schema?: string | undefined;
  readonly name: string;
}

/**
 * A table or index name: a {@link QualifiedName}, or a string written as in SQL — `users`, `app.users`,
 * `"Odd.Name"`, `"my schema"."my ""table"""`. Unquoted parts fold to lower case (ASCII, as
 * PostgreSQL does); quoted parts are taken literally. A name with `;` or `"` in it is only ever a name.
 */
export type RelationName = string | QualifiedName;

const UNQUOTED = /^[A-Za-z_\u0080-\u{10FFFF}][A-Za-z0-9_$\u0080-\u{10FFFF}]*$/u;
const MAX_IDENTIFIER_BYTES = 63;

/** Reject what can never be a PostgreSQL identifier; the message describes the shape only. */
function checkIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string')
    throw new MaintenanceInputError(field, `must be a string (got a ${value === null ? 'null' : typeof value})`);
  if (value.length === 0) throw new MaintenanceInputError(field, 'is empty');
  if (value.includes('\0')) throw new MaintenanceInputError(field, 'contains a NUL byte');
  // The server would truncate a longer name to 63 bytes and could match another relation.
  if (Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES)
    throw new MaintenanceInputError(field, `is longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  return value;
}

function parseParts(input: string, field: string): string[] {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part: string;
    if (input[i] === '"') {
      part = '';
      i++;
      for (;;) {
        const quote = input.indexOf('"', i);
        if (quote === -1) throw new MaintenanceInputError(field, 'has an unterminated double quote');
        part += input.slice(i, quote);
        i = quote + 1;
        if (input[i] !== '"') break;
        part += '"';
        i++;
      }
    } else {
      const dot = input.indexOf('.', i);
      const raw = input.slice(i, dot === -1 ? input.length : dot);
      if (raw.length === 0) throw new MaintenanceInputError(field, 'has an empty part');
      if (!UNQUOTED.test(raw))
        throw new MaintenanceInputError(
          field,
          'has an unquoted part with characters SQL does not allow there; double-quote it or pass { schema, name }',
        );
      part = raw.replace(/[A-Z]+/g, (s) => s.toLowerCase());
      i += raw.length;
    }
    parts.push(checkIdentifier(part, field));
    if (i === input.length) return parts;
    if (input[i] !== '.') throw new MaintenanceInputError(field, 'has characters after a closing quote');
    i++;
    if (i === input.length) throw new MaintenanceInputError(field, 'ends with a dot');
  }
}

/** Parse a {@link RelationName} into exact catalog strings, or throw {@link MaintenanceInputError}. */
export function parseRelationName(input: RelationName, field = 'table'): { schema: string | null; name: string } {
  if (typeof input === 'object' && input !== null) {
    const name = checkIdentifier(input.name, `${field}.name`);
    return { schema: input.schema === undefined ? null : checkIdentifier(input.schema, `${field}.schema`), name };
  }
  if (typeof input !== 'string') throw new MaintenanceInputError(field, 'must be a string or { schema, name }');
  if (input.length === 0) throw new MaintenanceInputError(field, 'is empty');
  const parts = parseParts(input, field);
  if (parts.length > 2) throw new MaintenanceInputError(field, `has ${parts.length} dotted parts; use name or schema.name`);
  return parts.length === 2
    ? { schema: parts[0] as string, name: parts[1] as string }
    : { schema: null, name: parts[0] as string };
}

/** A relation as the catalog knows it. `qualified` is the server's own `format('%I.%I', ...)`. */
export interface ResolvedRelation {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** Schema-qualified and quoted by the server; the only form of a name that enters SQL. */
  readonly qualified: string;
  readonly kind: string;
  /** For an index: its table, qualified. */
  readonly table: string | null;
  readonly canMaintain: boolean;
  readonly canTruncate: boolean;
  /** `server_version_num`, read in the same statement. */
  readonly serverVersion: number;
}

// Unqualified names follow the search path the server would use (temp schema and pg_catalog included).
// Permission mirrors the server: MAINTAIN privilege from 17, else owner, superuser or database owner.
const RESOLVE_SQL = `with found as (
  select c.oid, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) as qualified, c.relkind::text as kind, c.relowner, c.relisshared,
         (select format('%I.%I', tn.nspname, t.relname) from pg_catalog.pg_index x
            join pg_catalog.pg_class t on t.oid = x.indrelid
            join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace where x.indexrelid = c.oid) as tbl
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relname = $2 and (case when $1::text is null then n.nspname = any(pg_catalog.current_schemas(true)) else n.nspname = $1::text end)
   order by pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname::text)
   limit 1)
select pg_catalog.current_setting('server_version_num')::int as version, f.oid::int8 as oid, f.nspname as schema, f.relname as name,
       f.qualified, f.kind, f.tbl,
       case when f.oid is null then false
            when pg_catalog.current_setting('server_version_num')::int >= 170000 then pg_catalog.has_table_privilege(f.oid, 'MAINTAIN')
            else pg_catalog.pg_has_role(f.relowner, 'USAGE')
              or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
              or (not f.relisshared and pg_catalog.pg_has_role((select datdba from pg_catalog.pg_database where datname = pg_catalog.current_database()), 'USAGE'))
       end as can_maintain,
       coalesce(pg_catalog.has_table_privilege(f.oid, 'TRUNCATE'), false) as can_truncate
  from (select 1) one left join found f on true`;

interface ResolveRow {
  version: number;
  oid: string | null;
  schema: string;
  name: string;
  qualified: string;
  kind: string;
  tbl: string | null;
  can_maintain: boolean;
  can_truncate: boolean;
}

const TABLE_KINDS = ['r', 'p', 'm'];
const INDEX_KINDS = ['i', 'I'];

/**
 * Resolve a parsed name to one relation in one statement (with `server_version_num`), or throw
 * {@link RelationNotFoundError}. The name travels only as bound parameters.
 */
export async function resolveRelation(
  db: Queryable,
  parsed: { schema: string | null; name: string },
  kind: 'table' | 'index',
): Promise<ResolvedRelation> {
  const { rows } = await db.query<ResolveRow>(RESOLVE_SQL, [parsed.schema, parsed.name]);
  const row = rows[0] as ResolveRow;
  if (row.oid === null) throw new RelationNotFoundError(kind);
  if (!(kind === 'table' ? TABLE_KINDS : INDEX_KINDS).includes(row.kind))
    throw new RelationNotFoundError(
      kind,
      `name resolves to a relation that is not a ${kind === 'table' ? 'table or materialized view' : 'index'}`,
    );
  return {
    oid: Number(row.oid),
    schema: row.schema,
    name: row.name,
    qualified: row.qualified,
    kind: row.kind,
    table: row.tbl,
    canMaintain: row.can_maintain,
    canTruncate: row.can_truncate,
    serverVersion: row.version,
  };
}

/** Throw {@link MaintenancePermissionError} before sending a statement the server would refuse or skip. */
export function requirePrivilege(relation: ResolvedRelation, what: 'maintain' | 'truncate'): void {
  const ok = what === 'truncate' ? relation.canTruncate : relation.canMaintain;
  if (!ok)
    throw new MaintenancePermissionError(
      what === 'truncate'
        ? `The current role has no TRUNCATE privilege on ${relation.qualified}`
        : `The current role may not maintain ${relation.qualified}: it needs to own it${relation.serverVersion >= 170000 ? ' or hold the MAINTAIN privilege' : ' (or the database)'}`,
      { sqlstate: '42501', relation: relation.qualified },
    );
}

// The same permission rule as RESOLVE_SQL, for relations a plan names by OID.
const RESOLVE_OIDS_SQL = `select c.oid::int8 as oid, format('%I.%I', n.nspname, c.relname) as qualified, c.relkind::text as kind,
       case when pg_catalog.current_setting('server_version_num')::int >= 170000 then pg_catalog.has_table_privilege(c.oid, 'MAINTAIN')
            else pg_catalog.pg_has_role(c.relowner, 'USAGE')
              or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
              or (not c.relisshared and pg_catalog.pg_has_role((select datdba from pg_catalog.pg_database where datname = pg_catalog.current_database()), 'USAGE'))
       end as can_maintain
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where c.oid = any($1::oid[])`;

/** Current catalog name, kind and permission of each OID still present (one statement). */
export async function resolveOids(
  db: Queryable,
  oids: readonly number[],
): Promise<Map<number, { qualified: string; kind: string; canMaintain: boolean }>> {
  const { rows } = await db.query<{ oid: string; qualified: string; kind: string; can_maintain: boolean }>(RESOLVE_OIDS_SQL, [
    oids,
  ]);
  return new Map(rows.map((r) => [Number(r.oid), { qualified: r.qualified, kind: r.kind, canMaintain: r.can_maintain }]));
}
