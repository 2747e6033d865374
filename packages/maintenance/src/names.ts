import { InsufficientPrivilegeError, type QualifiedName, type Queryable } from '@accountdb/pool';
import { identifierProblem, parseQualifiedName } from '@accountdb/pool/internal';
import { MaintenanceInputError, RelationNotFoundError } from './errors.js';

export type { QualifiedName } from '@accountdb/pool';

/**
 * A table or index name: a {@link QualifiedName}, or a string written as in SQL — `users`, `app.users`,
 * `"Odd.Name"`, `"my schema"."my ""table"""`. Unquoted parts fold to lower case (ASCII, as
 * PostgreSQL does); quoted parts are taken literally. A name with `;` or `"` in it is only ever a name.
 */
export type RelationName = string | QualifiedName;

/** Reject what can never be a PostgreSQL identifier; the message describes the shape only. */
export function checkIdentifier(value: unknown, field: string): string {
  const problem = identifierProblem(value);
  if (problem !== undefined) throw new MaintenanceInputError(field, problem);
  return value as string;
}

/** Parse a {@link RelationName} into exact catalog strings, or throw {@link MaintenanceInputError}. */
export function parseRelationName(input: RelationName, field = 'table'): { schema: string | null; name: string } {
  return parseQualifiedName(input, (problem, part) => new MaintenanceInputError(part ? `${field}.${part}` : field, problem));
}

/** A relation as the catalog knows it. `qualified` is the server's own `format('%I.%I', ...)`. */
export interface ResolvedRelation {
  readonly oid: number;
  /** Schema-qualified and quoted by the server; the only form of a name that enters SQL. */
  readonly qualified: string;
  readonly kind: string;
  /** The table an index belongs to (the relation itself for a table): two jobs never share one. */
  readonly tableOid: number;
  readonly canMaintain: boolean;
  readonly canTruncate: boolean;
  /** `server_version_num`, read in the same statement. */
  readonly serverVersion: number;
}

// One statement shape for lookups by name and by OID: `source` yields the OIDs (NULL = not found).
// Unqualified names follow the search path the server would use (temp schema and pg_catalog included).
// Permission mirrors the server: MAINTAIN privilege from 17, else owner, superuser or database owner.
const relationSql = (source: string) => `select pg_catalog.current_setting('server_version_num')::int as version,
       c.oid::int8 as oid, case when c.oid is not null then format('%I.%I', n.nspname, c.relname) end as qualified, c.relkind::text as kind,
       coalesce(x.indrelid, c.oid)::int8 as table_oid,
       case when pg_catalog.current_setting('server_version_num')::int >= 170000 then pg_catalog.has_table_privilege(c.oid, 'MAINTAIN')
            else pg_catalog.pg_has_role(c.relowner, 'USAGE')
              or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
              or (not c.relisshared and pg_catalog.pg_has_role((select datdba from pg_catalog.pg_database where datname = pg_catalog.current_database()), 'USAGE'))
       end as can_maintain,
       pg_catalog.has_table_privilege(c.oid, 'TRUNCATE') as can_truncate
  from (${source}) f left join pg_catalog.pg_class c on c.oid = f.oid
  left join pg_catalog.pg_namespace n on n.oid = c.relnamespace left join pg_catalog.pg_index x on x.indexrelid = c.oid`;

const BY_NAME_SQL =
  relationSql(`select (select c.oid from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relname = $2 and (case when $1::text is null then n.nspname = any(pg_catalog.current_schemas(true)) else n.nspname = $1::text end)
   order by pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname::text) limit 1) as oid`);
const BY_OIDS_SQL = relationSql('select pg_catalog.unnest($1::oid[]) as oid');

interface RelationRow {
  version: number;
  oid: string | null;
  qualified: string;
  kind: string;
  table_oid: string;
  can_maintain: boolean | null;
  can_truncate: boolean | null;
}

const toRelation = (r: RelationRow): ResolvedRelation => ({
  oid: Number(r.oid),
  qualified: r.qualified,
  kind: r.kind,
  tableOid: Number(r.table_oid),
  canMaintain: r.can_maintain === true,
  canTruncate: r.can_truncate === true,
  serverVersion: r.version,
});

/**
 * Resolve a parsed name to one relation in one statement (with `server_version_num`), or throw
 * {@link RelationNotFoundError}. The name travels only as bound parameters.
 */
export async function resolveRelation(
  db: Queryable,
  parsed: { schema: string | null; name: string },
  kind: 'table' | 'index',
): Promise<ResolvedRelation> {
  const { rows } = await db.query<RelationRow>(BY_NAME_SQL, [parsed.schema, parsed.name]);
  const row = rows[0] as RelationRow;
  if (row.oid === null) throw new RelationNotFoundError(kind);
  if (!(kind === 'table' ? ['r', 'p', 'm'] : ['i', 'I']).includes(row.kind))
    throw new RelationNotFoundError(
      kind,
      `name resolves to a relation that is not a ${kind === 'table' ? 'table or materialized view' : 'index'}`,
    );
  return toRelation(row);
}

/** The relations of these OIDs still present, by OID (one statement). */
export async function resolveOids(db: Queryable, oids: readonly number[]): Promise<Map<number, ResolvedRelation>> {
  const { rows } = await db.query<RelationRow>(BY_OIDS_SQL, [oids]);
  return new Map(rows.filter((r) => r.oid !== null).map((r) => [Number(r.oid), toRelation(r)]));
}

/** Throw `InsufficientPrivilegeError` (42501) before sending a statement the server would refuse or skip. */
export function requirePrivilege(relation: ResolvedRelation, what: 'maintain' | 'truncate'): void {
  const ok = what === 'truncate' ? relation.canTruncate : relation.canMaintain;
  if (!ok)
    throw new InsufficientPrivilegeError(
      what === 'truncate'
        ? `The current role has no TRUNCATE privilege on ${relation.qualified}`
        : `The current role may not maintain ${relation.qualified}: it needs to own it${relation.serverVersion >= 170000 ? ' or hold the MAINTAIN privilege' : ' (or the database)'}`,
    );
}
