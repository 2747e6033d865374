import { QueryArgumentError } from './errors.js';
import { SqlFragment } from './sql.js';

/** SQL text with `$n` placeholders, or a fragment from the `sql` tag (which carries its own values). */
export type Query = string | SqlFragment;

/** Turn a query and its parameters into what the driver takes, rejecting ambiguous input. */
export function toStatement(
  query: Query,
  params: readonly unknown[] | undefined,
): { text: string; values: unknown[] | undefined } {
  if (SqlFragment.is(query)) {
    if (params !== undefined) throw new QueryArgumentError('Pass values inside the sql`...` fragment, not as params as well');
    return { text: query.text, values: query.values };
  }
  if (typeof query !== 'string') throw new QueryArgumentError('query must be a string or a sql`...` fragment');
  if (params !== undefined && !Array.isArray(params)) throw new QueryArgumentError('params must be an array');
  return { text: query, values: params as unknown[] | undefined };
}
