import type { QualifiedName } from '@accountdb/pool';
import { type NameProblem, parseIdentifier, parseQualifiedName } from '@accountdb/pool/internal';
import { InvalidIdentifierError } from './errors.js';

export type { QualifiedName };

/**
 * A table name: either a {@link QualifiedName}, or a string written as in SQL — `users`,
 * `app.users`, `"Odd.Name"`, `"my schema"."my ""table"""`. In the string form unquoted parts are
 * folded to lower case (ASCII only, as PostgreSQL does) and quoted parts are taken literally.
 */
export type TableName = string | QualifiedName;

/** Names problems as {@link InvalidIdentifierError}s that start with `what` ("table name is empty"). */
export function invalidIdentifier(what: string): NameProblem {
  return (problem, part) => new InvalidIdentifierError(`${part === 'schema' ? 'schema name' : what} ${problem}`);
}

/** Resolve a {@link TableName} to exact catalog strings. Throws {@link InvalidIdentifierError}. */
export function parseTableName(input: TableName, what = 'table name'): { schema: string | null; name: string } {
  return parseQualifiedName(input, invalidIdentifier(what));
}

/** Resolve one column name written as in SQL (`email`, `"Email"`). Throws {@link InvalidIdentifierError}. */
export function parseColumnName(input: string): string {
  return parseIdentifier(input, invalidIdentifier('column name'));
}
