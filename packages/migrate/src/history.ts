import type { Queryable } from '@accountdb/pool';

/** One row of the history table. */
export interface HistoryRow {
  readonly rank: number;
  /** Decimal version; `null` for repeatable migrations. */
  readonly version: string | null;
  readonly description: string;
  readonly kind: 'versioned' | 'repeatable' | 'baseline';
  /** File name (for a baseline: `<< baseline >>`). */
  readonly script: string;
  /** sha256 (hex) of the normalized file; `null` for a baseline. */
  readonly checksum: string | null;
  readonly appliedAt: Date;
  readonly appliedBy: string;
  readonly durationMs: number;
  readonly success: boolean;
}

/** Where the history lives; names are quoted, never interpolated raw. */
export interface HistoryTable {
  readonly schema: string;
  readonly table: string;
  /** `"schema"."table"`, quoted. */
  readonly qualified: string;
  readonly quotedSchema: string;
}

/** Double-quote an identifier (validated beforehand: non-empty, no NUL, at most 63 bytes). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function historyTable(schema: string, table: string): HistoryTable {
  const quotedSchema = quoteIdentifier(schema);
  return { schema, table, quotedSchema, qualified: `${quotedSchema}.${quoteIdentifier(table)}` };
}

const COLUMNS =
  'installed_rank AS rank, version, description, kind, script, checksum, applied_at AS "appliedAt", ' +
  'applied_by AS "appliedBy", duration_ms AS "durationMs", success';

/** Whether the history table exists (read-only). */
export async function historyExists(db: Queryable, history: HistoryTable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [history.qualified]);
  return rows[0]?.ok === true;
}

/** Create the schema and table when missing (run under the migration lock). */
export async function ensureHistory(db: Queryable, history: HistoryTable): Promise<void> {
  if (await historyExists(db, history)) return;
  const { rows } = await db.query<{ ok: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS ok', [history.quotedSchema]);
  if (!rows[0]?.ok) await db.query(`CREATE SCHEMA IF NOT EXISTS ${history.quotedSchema}`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${history.qualified} (
    installed_rank bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text UNIQUE,
    description text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('versioned', 'repeatable', 'baseline')),
    script text NOT NULL,
    checksum text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    duration_ms integer NOT NULL DEFAULT 0,
    success boolean NOT NULL
  )`);
}

/** Every row, oldest first; empty when the table does not exist yet (`exists`: known to exist). */
export async function readHistory(db: Queryable, history: HistoryTable, exists = false): Promise<HistoryRow[]> {
  if (!exists && !(await historyExists(db, history))) return [];
  const { rows } = await db.query<HistoryRow & { rank: string }>(
    `SELECT ${COLUMNS} FROM ${history.qualified} ORDER BY installed_rank`,
  );
  return rows.map((r) => ({ ...r, rank: Number(r.rank) }));
}

/** Fields of a new history row. */
export interface NewHistoryRow {
  readonly version: string | null;
  readonly description: string;
  readonly kind: HistoryRow['kind'];
  readonly script: string;
  readonly checksum: string | null;
  /** `null`: the time since the transaction began, measured by the server. */
  readonly durationMs: number | null;
  readonly success: boolean;
}

/** A history statement with its bound values, to run alone or inside a migration's batch. */
export interface HistoryStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

export function insertStatement(history: HistoryTable, row: NewHistoryRow): HistoryStatement {
  return {
    text: `INSERT INTO ${history.qualified} (version, description, kind, script, checksum, duration_ms, success)
     VALUES ($1, $2, $3, $4, $5, coalesce($6, extract(epoch FROM clock_timestamp() - now()) * 1000)::integer, $7)
     RETURNING installed_rank AS rank`,
    values: [
      row.version,
      row.description,
      row.kind,
      row.script,
      row.checksum,
      row.durationMs === null ? null : Math.round(row.durationMs),
      row.success,
    ],
  };
}

/** Insert a row; returns its rank. */
export async function insertHistory(db: Queryable, history: HistoryTable, row: NewHistoryRow): Promise<number> {
  const { text, values } = insertStatement(history, row);
  const { rows } = await db.query<{ rank: string }>(text, [...values]);
  return Number(rows[0]!.rank);
}

export async function markSucceeded(db: Queryable, history: HistoryTable, rank: number, durationMs: number): Promise<void> {
  await db.query(`UPDATE ${history.qualified} SET success = true, duration_ms = $2 WHERE installed_rank = $1`, [
    rank,
    Math.round(durationMs),
  ]);
}

export function deleteStatement(history: HistoryTable, rank: number): HistoryStatement {
  return { text: `DELETE FROM ${history.qualified} WHERE installed_rank = $1`, values: [rank] };
}

export async function deleteHistory(db: Queryable, history: HistoryTable, rank: number): Promise<void> {
  const { text, values } = deleteStatement(history, rank);
  await db.query(text, [...values]);
}

export async function updateChecksum(db: Queryable, history: HistoryTable, rank: number, checksum: string): Promise<void> {
  await db.query(`UPDATE ${history.qualified} SET checksum = $2 WHERE installed_rank = $1`, [rank, checksum]);
}
