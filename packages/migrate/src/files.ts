import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Node, parse } from 'libpg-query';
import { MigrationFileError } from './errors.js';

/** Settings a file may give in its header comments (`-- migrate:...` lines before any SQL). */
export interface MigrationHeader {
  /** False with `-- migrate:no-transaction`: statements run one by one, outside a transaction. */
  readonly transaction: boolean;
  /** `-- migrate:lock-timeout=5s` (ms, s or min; 0 = none). */
  readonly lockTimeoutMs?: number;
  /** `-- migrate:statement-timeout=10min` (ms, s or min; 0 = none). */
  readonly statementTimeoutMs?: number;
}

/** One migration on disk. */
export interface MigrationFile {
  /** `versioned` (`NNNN_description.sql`) or `repeatable` (`R__description.sql`). */
  readonly kind: 'versioned' | 'repeatable';
  /** Decimal version without leading zeros; `null` for repeatable migrations. */
  readonly version: string | null;
  readonly description: string;
  /** File name, e.g. `0003_add_cards.sql`. */
  readonly file: string;
  /** Normalized contents: BOM stripped, CRLF → LF. */
  readonly sql: string;
  /** sha256 (hex) of {@link sql}. */
  readonly checksum: string;
  readonly header: MigrationHeader;
  /** The matching `.down.sql`, normalized, when there is one. */
  readonly down?: { readonly file: string; readonly sql: string; readonly header: MigrationHeader };
}

const VERSIONED = /^(\d{1,18})_(.+?)(\.down)?\.sql$/s;
const REPEATABLE = /^R__(.+)\.sql$/s;
const MAX_DESCRIPTION = 200;
const HEADER = /^--\s*migrate:([a-z-]+)(?:\s*=\s*(\S+))?\s*$/;
const DURATION = /^(\d+)(ms|s|min)?$/;

/** BOM stripped, CRLF (and lone CR) → LF: a checkout on Windows does not count as an edit. */
export function normalizeSql(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/** Compare decimal version strings numerically. */
export function compareVersions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function checkDescription(file: string, description: string): void {
  if (description.length > MAX_DESCRIPTION)
    throw new MigrationFileError(file, `description longer than ${MAX_DESCRIPTION} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(description)) throw new MigrationFileError(file, 'control characters in the file name');
}

/** Read the header comments: `-- migrate:no-transaction`, `-- migrate:lock-timeout=5s`, `-- migrate:statement-timeout=0`. */
export function parseHeader(file: string, sql: string): MigrationHeader {
  let transaction = true;
  let lockTimeoutMs: number | undefined;
  let statementTimeoutMs: number | undefined;
  for (const raw of sql.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (!line.startsWith('--')) break;
    const match = HEADER.exec(line);
    if (!match) continue;
    const [, name, value] = match;
    const duration = () => {
      const d = value === undefined ? null : DURATION.exec(value);
      if (!d) throw new MigrationFileError(file, `-- migrate:${name} needs a duration such as 5s, 500ms or 2min`);
      return Number(d[1]) * (d[2] === 's' ? 1000 : d[2] === 'min' ? 60_000 : 1);
    };
    if (name === 'no-transaction' && value === undefined) transaction = false;
    else if (name === 'lock-timeout') lockTimeoutMs = duration();
    else if (name === 'statement-timeout') statementTimeoutMs = duration();
    else
      throw new MigrationFileError(
        file,
        `unknown header "-- migrate:${name}" (known: no-transaction, lock-timeout, statement-timeout)`,
      );
  }
  return {
    transaction,
    ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
    ...(statementTimeoutMs === undefined ? {} : { statementTimeoutMs }),
  };
}

/**
 * Read a migrations directory. Every `*.sql` file must be `NNNN_description.sql`, `NNNN_description.down.sql`
 * or `R__description.sql`; other files are ignored. Versions are unique (numerically: `1_a` and `0001_b` clash).
 * Versioned files come sorted by version, then repeatables by description.
 */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const names = await listDirectory(dir);
  const ups = new Map<string, { file: string; description: string; kind: 'versioned' | 'repeatable'; version: string | null }>();
  const downs = new Map<string, string>();
  for (const file of names.sort()) {
    if (!file.endsWith('.sql')) continue;
    const repeatable = REPEATABLE.exec(file);
    const versioned = VERSIONED.exec(file);
    if (repeatable) {
      const description = repeatable[1]!;
      checkDescription(file, description);
      ups.set(`R:${description}`, { file, description, kind: 'repeatable', version: null });
    } else if (versioned) {
      const version = BigInt(versioned[1]!).toString();
      const description = versioned[2]!;
      checkDescription(file, description);
      if (versioned[3]) {
        const other = downs.get(version);
        if (other) throw new MigrationFileError(file, `version ${version} already has a down file ${other}`);
        downs.set(version, file);
        continue;
      }
      const other = ups.get(`V:${version}`);
      if (other) throw new MigrationFileError(file, `version ${version} is also used by ${other.file}`);
      ups.set(`V:${version}`, { file, description, kind: 'versioned', version });
    } else {
      throw new MigrationFileError(
        file,
        'not a migration name: expected NNNN_description.sql, NNNN_description.down.sql or R__description.sql',
      );
    }
  }
  for (const [version, file] of downs) {
    if (!ups.has(`V:${version}`)) throw new MigrationFileError(file, `down file without an up migration for version ${version}`);
  }
  // Read synchronously: hundreds of small files take ~20 ms this way, 4-5x less than through the thread pool.
  const load = (file: string) => {
    const sql = normalizeSql(readFileSync(join(dir, file), 'utf8'));
    return { file, sql, header: parseHeader(file, sql) };
  };
  const result = [...ups.values()].map((entry): MigrationFile => {
    const { sql, header } = load(entry.file);
    const downFile = entry.version === null ? undefined : downs.get(entry.version);
    return { ...entry, sql, header, checksum: checksumOf(sql), ...(downFile ? { down: load(downFile) } : {}) };
  });
  const byDescription = (a: MigrationFile, b: MigrationFile) =>
    a.description < b.description ? -1 : a.description > b.description ? 1 : 0;
  return [
    ...result.filter((f) => f.version !== null).sort((a, b) => compareVersions(a.version!, b.version!)),
    ...result.filter((f) => f.version === null).sort(byDescription),
  ];
}

/** The names in a migrations directory; a {@link MigrationFileError} when it cannot be read. */
export async function listDirectory(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    throw new MigrationFileError(dir, `cannot read the migrations directory (${(err as { code?: string }).code ?? 'error'})`);
  }
}

/** One statement of a file, with the line it starts on. */
export interface Statement {
  readonly sql: string;
  readonly line: number;
}

/** A statement with its parse tree, for the linter. */
export interface ParsedStatement extends Statement {
  readonly node: Node;
  /** 1-based line of a byte offset into the file (parse-tree locations are byte offsets). */
  readonly lineAt: (byteOffset: number | undefined) => number;
}

/** 1-based line of each UTF-8 byte offset of `bytes`. */
function lineCounter(bytes: Buffer): (byteOffset: number) => number {
  const newlines: number[] = [];
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) newlines.push(i);
  return (offset) => {
    let lo = 0;
    let hi = newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (newlines[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/**
 * Parse SQL with PostgreSQL's own grammar (libpg-query) into statements: quotes, dollar quotes, comments,
 * `DO` blocks and `BEGIN ATOMIC` bodies stay whole. A file the grammar rejects is a {@link MigrationFileError}
 * naming the line.
 */
export async function parseStatements(file: string, sql: string): Promise<ParsedStatement[]> {
  let result: Awaited<ReturnType<typeof parse>>;
  try {
    result = await parse(sql);
  } catch (err) {
    // The parser's cursor position counts characters (code points), 0-based; locations in a tree count bytes.
    const position = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    const reason = err instanceof Error ? err.message : String(err);
    const line = position === undefined ? undefined : Array.from(sql).slice(0, position).join('').split('\n').length;
    throw new MigrationFileError(file, `PostgreSQL cannot parse it: ${reason}`, line);
  }
  const bytes = Buffer.from(sql, 'utf8');
  const lineOf = lineCounter(bytes);
  const statements: ParsedStatement[] = [];
  for (const stmt of result.stmts ?? []) {
    const start = stmt.stmt_location ?? 0;
    const end = stmt.stmt_len === undefined || stmt.stmt_len === 0 ? bytes.length : start + stmt.stmt_len;
    const text = bytes.subarray(start, end).toString('utf8');
    const leading = Buffer.byteLength(text.slice(0, text.length - text.trimStart().length));
    const line = lineOf(start + leading);
    const lineAt = (offset: number | undefined) => (offset === undefined || offset < 0 ? line : lineOf(offset));
    if (stmt.stmt) statements.push({ sql: text.trim(), line, node: stmt.stmt, lineAt });
  }
  return statements;
}

/** Split SQL into statements by PostgreSQL's grammar (see {@link parseStatements}). */
export async function splitStatements(file: string, sql: string): Promise<Statement[]> {
  return (await parseStatements(file, sql)).map(({ sql, line }) => ({ sql, line }));
}
