import { InvalidIdentifierError } from './errors.js';
import { assertIdentifier } from './sql.js';

/** A table named exactly: no parsing, no case folding. `schema` omitted = resolved through `search_path`. */
export interface QualifiedName {
  readonly schema?: string | undefined;
  readonly name: string;
}

/**
 * A table name: either a {@link QualifiedName}, or a string written as in SQL — `users`,
 * `app.users`, `"Odd.Name"`, `"my schema"."my ""table"""`. In the string form unquoted parts are
 * folded to lower case (ASCII only, as PostgreSQL does) and quoted parts are taken literally.
 */
export type TableName = string | QualifiedName;

const UNQUOTED = /^[A-Za-z_\u0080-\u{10FFFF}][A-Za-z0-9_$\u0080-\u{10FFFF}]*$/u;

/** Split a SQL-style dotted name into parts, honouring double quotes. Throws before any SQL runs. */
function parseParts(input: string, what: string): string[] {
  if (input.length === 0) throw new InvalidIdentifierError(`${what} is empty`);
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part: string;
    if (input[i] === '"') {
      part = '';
      i++;
      for (;;) {
        const quote = input.indexOf('"', i);
        if (quote === -1) throw new InvalidIdentifierError(`${what} has an unterminated double quote`);
        part += input.slice(i, quote);
        i = quote + 1;
        if (input[i] !== '"') break;
        part += '"';
        i++;
      }
      if (part.length === 0) throw new InvalidIdentifierError(`${what} has an empty quoted part ("")`);
    } else {
      const dot = input.indexOf('.', i);
      const raw = input.slice(i, dot === -1 ? input.length : dot);
      if (raw.length === 0) throw new InvalidIdentifierError(`${what} has an empty part`);
      if (!UNQUOTED.test(raw)) {
        throw new InvalidIdentifierError(
          `${what} has an unquoted part with characters SQL does not allow there; double-quote it${what === 'column name' ? '' : ' or pass { schema, name }'}`,
        );
      }
      part = raw.replace(/[A-Z]+/g, (s) => s.toLowerCase());
      i += raw.length;
    }
    assertIdentifier(part, what);
    parts.push(part);
    if (i === input.length) return parts;
    if (input[i] !== '.') throw new InvalidIdentifierError(`${what} has characters after a closing quote`);
    i++;
    if (i === input.length) throw new InvalidIdentifierError(`${what} ends with a dot`);
  }
}

/** Resolve a {@link TableName} to exact catalog strings. Throws {@link InvalidIdentifierError}. */
export function parseTableName(input: TableName, what = 'table name'): { schema: string | null; name: string } {
  if (typeof input === 'object' && input !== null) {
    assertIdentifier(input.name, what);
    if (input.schema !== undefined) assertIdentifier(input.schema, 'schema name');
    return { schema: input.schema ?? null, name: input.name };
  }
  if (typeof input !== 'string') throw new InvalidIdentifierError(`${what} must be a string or { schema, name }`);
  const parts = parseParts(input, what);
  if (parts.length > 2) throw new InvalidIdentifierError(`${what} has ${parts.length} parts; use name or schema.name`);
  return parts.length === 2
    ? { schema: parts[0] as string, name: parts[1] as string }
    : { schema: null, name: parts[0] as string };
}

/** Resolve one column name written as in SQL (`email`, `"Email"`). Throws {@link InvalidIdentifierError}. */
export function parseColumnName(input: string): string {
  if (typeof input !== 'string') throw new InvalidIdentifierError('column name must be a string');
  const parts = parseParts(input, 'column name');
  if (parts.length !== 1) throw new InvalidIdentifierError('column name must be a single identifier (double-quote dots)');
  return parts[0] as string;
}
