/** PostgreSQL's NAMEDATALEN - 1: longer identifiers are silently truncated by the server. */
export const MAX_IDENTIFIER_BYTES = 63;

/** A relation named exactly: no parsing, no case folding. `schema` omitted = resolved through `search_path`. */
export interface QualifiedName {
  readonly schema?: string | undefined;
  readonly name: string;
}

/**
 * Turns a rejected name into the caller's typed error. `problem` reads after the field's name ("is
 * empty") and describes the name's shape, never its text; `part` says which field of a
 * {@link QualifiedName} it was.
 */
export type NameProblem = (problem: string, part?: 'schema' | 'name') => Error;

const UNQUOTED = /^[A-Za-z_\u0080-\u{10FFFF}][A-Za-z0-9_$\u0080-\u{10FFFF}]*$/u;
const UNQUOTED_PROBLEM = 'has an unquoted part with characters SQL does not allow there; double-quote it';

/** Why `value` cannot be a PostgreSQL identifier as is, or `undefined` when it can. */
export function identifierProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string (got ${value === null ? 'null' : `a ${typeof value}`})`;
  if (value.length === 0) return 'is empty';
  if (value.includes('\0')) return 'contains a NUL character';
  const bytes = Buffer.byteLength(value);
  // The server would truncate a longer name and could then match another object.
  if (bytes > MAX_IDENTIFIER_BYTES)
    return `is ${bytes} bytes; PostgreSQL identifiers are at most ${MAX_IDENTIFIER_BYTES} bytes (longer ones are truncated)`;
  return undefined;
}

/** Quote one identifier: always double-quoted, embedded quotes doubled, so nothing in it is ever SQL. */
export function quoteIdentifier(name: string, fail: NameProblem): string {
  const problem = identifierProblem(name);
  if (problem !== undefined) throw fail(problem);
  return `"${name.replace(/"/g, '""')}"`;
}

/** Split a SQL-style dotted name into exact parts, honouring double quotes and folding unquoted parts. */
function parseParts(input: string, fail: NameProblem, unquotedHint: string): string[] {
  if (input.length === 0) throw fail('is empty');
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part: string;
    if (input[i] === '"') {
      part = '';
      i++;
      for (;;) {
        const quote = input.indexOf('"', i);
        if (quote === -1) throw fail('has an unterminated double quote');
        part += input.slice(i, quote);
        i = quote + 1;
        if (input[i] !== '"') break;
        part += '"';
        i++;
      }
      if (part.length === 0) throw fail('has an empty quoted part ("")');
    } else {
      const dot = input.indexOf('.', i);
      const raw = input.slice(i, dot === -1 ? input.length : dot);
      if (raw.length === 0) throw fail('has an empty part');
      if (!UNQUOTED.test(raw)) throw fail(UNQUOTED_PROBLEM + unquotedHint);
      // ASCII only, as PostgreSQL folds.
      part = raw.replace(/[A-Z]+/g, (s) => s.toLowerCase());
      i += raw.length;
    }
    const problem = identifierProblem(part);
    if (problem !== undefined) throw fail(problem);
    parts.push(part);
    if (i === input.length) return parts;
    if (input[i] !== '.') throw fail('has characters after a closing quote');
    i++;
    if (i === input.length) throw fail('ends with a dot');
  }
}

/**
 * A relation name to exact catalog strings: a {@link QualifiedName} (taken literally), or a string
 * written as in SQL — `users`, `app.users`, `"Odd.Name"`, `"my schema"."my ""table"""` — whose unquoted
 * parts fold to lower case and quoted parts are taken literally. Throws `fail(problem)` before any SQL.
 */
export function parseQualifiedName(input: string | QualifiedName, fail: NameProblem): { schema: string | null; name: string } {
  if (typeof input === 'object' && input !== null) {
    const nameProblem = identifierProblem(input.name);
    if (nameProblem !== undefined) throw fail(nameProblem, 'name');
    const schemaProblem = input.schema === undefined ? undefined : identifierProblem(input.schema);
    if (schemaProblem !== undefined) throw fail(schemaProblem, 'schema');
    return { schema: input.schema ?? null, name: input.name };
  }
  if (typeof input !== 'string') throw fail('must be a string or { schema, name }');
  const parts = parseParts(input, fail, ' or pass { schema, name }');
  if (parts.length > 2) throw fail(`has ${parts.length} dotted parts; use name or schema.name`);
  return parts.length === 2
    ? { schema: parts[0] as string, name: parts[1] as string }
    : { schema: null, name: parts[0] as string };
}

/** One identifier written as in SQL (`email`, `"Email"`) to its exact text. Throws `fail(problem)` before any SQL. */
export function parseIdentifier(input: string, fail: NameProblem): string {
  if (typeof input !== 'string') throw fail(identifierProblem(input) as string);
  const parts = parseParts(input, fail, '');
  if (parts.length !== 1) throw fail('must be a single identifier (double-quote dots)');
  return parts[0] as string;
}
