import { count, num, runStats, SCHEMA_FILTER, type StatsContext, type StatsSource, schemaParams } from './context.js';
import { type DatabaseWraparound, fetchDatabase } from './database.js';
import type { StatsOptions } from './options.js';
import { fetchTables, type TableFacts } from './tables.js';

/** Transaction ID and MultiXact age per database and the oldest tables of this one. */
export interface Wraparound {
  /** Every database that accepts connections, oldest first. */
  readonly databases: readonly DatabaseWraparound[];
  /** Tables of this database by transaction ID age (TOAST included), oldest first, at most `limit`. */
  readonly oldestTables: readonly { schema: string; name: string; xidAge: number; mxidAge: number }[];
  /** `autovacuum_freeze_max_age`: past it autovacuum vacuums a table to freeze it, even when autovacuum is off. */
  readonly freezeMaxAge: number;
  readonly multixactFreezeMaxAge: number;
}

export function toWraparound(
  databases: readonly DatabaseWraparound[],
  tables: readonly TableFacts[],
  ctx: StatsContext,
): Wraparound {
  return {
    databases,
    oldestTables: [...tables]
      .sort((a, b) => b.xidAge - a.xidAge)
      .slice(0, ctx.options.limit)
      .map(({ schema, name, xidAge, mxidAge }) => ({ schema, name, xidAge, mxidAge })),
    freezeMaxAge: count(ctx.server.settings.autovacuum_freeze_max_age),
    multixactFreezeMaxAge: count(ctx.server.settings.autovacuum_multixact_freeze_max_age),
  };
}

/** Transaction ID and MultiXact wraparound: age per database and the oldest tables. */
export function getWraparound(source: StatsSource, options?: StatsOptions): Promise<Wraparound> {
  return runStats(source, options, async (ctx) =>
    toWraparound((await fetchDatabase(ctx)).databases, await fetchTables(ctx), ctx),
  );
}

/** How close a sequence is to the largest value it, or the column it feeds, can hold. */
export interface SequenceUsage {
  readonly schema: string;
  readonly name: string;
  /** The sequence's own type (`bigint`, `integer`, `smallint`). */
  readonly sequenceType: string;
  /** The column it feeds (by ownership, identity or a `nextval` default); null when none. */
  readonly column: { readonly schema: string; readonly table: string; readonly name: string; readonly type: string } | null;
  /** Last value handed out; null when never used or not visible (see `note`). Precise up to 2^53. */
  readonly lastValue: number | null;
  /** The smaller of the sequence's maximum and the column type's maximum. */
  readonly maxValue: number;
  /** lastValue / maxValue, 0..1 (for descending sequences, against the minimum). */
  readonly usedFraction: number | null;
  readonly cycles: boolean;
  readonly note: string | null;
}

const TYPE_LIMITS = `case t when 'int2'::regtype then 32767 when 'int4'::regtype then 2147483647
  when 'int8'::regtype then 9223372036854775807 end::numeric`;

export async function fetchSequences(ctx: StatsContext): Promise<SequenceUsage[]> {
  const { rows } = await ctx.q.query(
    `select n.nspname as schema, c.relname as name, format_type(seq.seqtypid, null) as sequence_type,
       seq.seqmax::numeric as seqmax, seq.seqmin::numeric as seqmin, seq.seqincrement, seq.seqcycle,
       has_sequence_privilege(c.oid, 'select,usage') as visible,
       case when has_sequence_privilege(c.oid, 'select,usage') then pg_sequence_last_value(c.oid)::numeric end as last_value,
       col.*
     from pg_sequence seq join pg_class c on c.oid = seq.seqrelid join pg_namespace n on n.oid = c.relnamespace
     left join lateral (
       select tn.nspname as col_schema, tc.relname as col_table, a.attname as col_name, format_type(a.atttypid, a.atttypmod) as col_type,
         (select ${TYPE_LIMITS} from (select a.atttypid as t) x) as col_max
       from (select d.refobjid as rel, d.refobjsubid as att from pg_depend d
             where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.refclassid = 'pg_class'::regclass
               and d.deptype in ('a', 'i') and d.refobjsubid > 0
             union
             select ad.adrelid, ad.adnum from pg_depend d join pg_attrdef ad on ad.oid = d.objid
             where d.classid = 'pg_attrdef'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjid = c.oid) dep
       join pg_class tc on tc.oid = dep.rel join pg_namespace tn on tn.oid = tc.relnamespace
       join pg_attribute a on a.attrelid = dep.rel and a.attnum = dep.att
       order by 5 nulls last limit 1) col on true
     where ${SCHEMA_FILTER}
     order by n.nspname, c.relname`,
    schemaParams(ctx.options),
  );
  return rows.map((r) => {
    const descending = Number(r.seqincrement) < 0;
    const colMax = num(r.col_max);
    const bound = descending
      ? Math.max(Number(r.seqmin), colMax === null ? -Infinity : -colMax - 1)
      : Math.min(Number(r.seqmax), colMax ?? Infinity);
    const last = num(r.last_value);
    return {
      schema: r.schema,
      name: r.name,
      sequenceType: r.sequence_type,
      column: r.col_table ? { schema: r.col_schema, table: r.col_table, name: r.col_name, type: r.col_type } : null,
      lastValue: last,
      maxValue: bound,
      usedFraction: last === null ? null : Math.max(0, last / bound),
      cycles: r.seqcycle,
      note: !r.visible ? 'no SELECT or USAGE privilege on this sequence' : last === null ? 'never used' : null,
    };
  });
}

export function toSequenceUsage(sequences: SequenceUsage[]): SequenceUsage[] {
  return sequences.sort((a, b) => (b.usedFraction ?? -1) - (a.usedFraction ?? -1));
}

/** Every sequence, closest to exhaustion first (an int4 column fed by a bigint sequence counts against int4). */
export function getSequenceUsage(source: StatsSource, options?: StatsOptions): Promise<SequenceUsage[]> {
  return runStats(source, options, async (ctx) => toSequenceUsage(await fetchSequences(ctx)));
}
