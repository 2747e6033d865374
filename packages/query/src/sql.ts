import { quoteIdentifier as quotePoolIdentifier } from '@accountdb/pool/internal';
import { InvalidIdentifierError, QueryArgumentError } from './errors.js';
import { invalidIdentifier } from './names.js';

/** Only this module can build fragments, so raw text cannot be smuggled in through the constructor. */
const INTERNAL = Symbol('SqlFragment');

/**
 * A piece of SQL with its bound values, built only by {@link sql}. `text` uses `$1..$n` placeholders
 * numbered for this fragment; embedding it in another fragment renumbers them.
 */
export class SqlFragment {
  /** Literal SQL between values: always one more than `values`. */
  readonly #strings: readonly string[];
  readonly #values: readonly unknown[];
  #text: string | undefined;

  /** @internal Use the {@link sql} tag; the constructor throws for anyone else. */
  constructor(token: symbol, strings: readonly string[], values: readonly unknown[]) {
    if (token !== INTERNAL) throw new QueryArgumentError('Build SQL fragments with the sql`...` tag');
    this.#strings = strings;
    this.#values = values;
  }

  /** The SQL text with `$n` placeholders. */
  get text(): string {
    if (this.#text === undefined) {
      let text = this.#strings[0] as string;
      for (let i = 1; i < this.#strings.length; i++) text += `$${i}${this.#strings[i]}`;
      this.#text = text;
    }
    return this.#text;
  }

  /** The bound values, in placeholder order. */
  get values(): unknown[] {
    return [...this.#values];
  }

  /** @internal */
  static parts(fragment: SqlFragment): [readonly string[], readonly unknown[]] {
    return [fragment.#strings, fragment.#values];
  }

  /** True for a fragment built by {@link sql}. */
  static is(value: unknown): value is SqlFragment {
    return value instanceof SqlFragment;
  }

  /** Shows the text only: values may be secrets. */
  toString(): string {
    return `SqlFragment(${this.text})`;
  }

  toJSON(): { text: string; valueCount: number } {
    return { text: this.text, valueCount: this.#values.length };
  }
}

/** Append `value` (a fragment is spliced in, anything else becomes a bound parameter). */
function build(strings: readonly string[], values: readonly unknown[]): SqlFragment {
  const outStrings: string[] = [strings[0] as string];
  const outValues: unknown[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    const next = strings[i + 1] as string;
    if (SqlFragment.is(value)) {
      const [innerStrings, innerValues] = SqlFragment.parts(value);
      outStrings[outStrings.length - 1] += innerStrings[0] as string;
      for (let j = 0; j < innerValues.length; j++) {
        outValues.push(innerValues[j]);
        outStrings.push(innerStrings[j + 1] as string);
      }
      outStrings[outStrings.length - 1] += next;
    } else {
      if (value === undefined) {
        throw new QueryArgumentError(`sql: value ${i + 1} is undefined (bind null explicitly if that is meant)`);
      }
      outValues.push(value);
      outStrings.push(next);
    }
  }
  return new SqlFragment(INTERNAL, outStrings, outValues);
}

/** Quote one identifier: always double-quoted, embedded quotes doubled, so nothing in it is ever SQL. Throws {@link InvalidIdentifierError}. */
export function quoteIdentifier(name: string): string {
  return quotePoolIdentifier(name, invalidIdentifier('identifier'));
}

interface SqlTag {
  /**
   * Build a {@link SqlFragment}: interpolated values are bound as parameters, interpolated fragments
   * are spliced in (their parameters renumbered). The only safe way to compose SQL in this toolkit.
   *
   * @example sql`select * from ${sql.identifier('app', 'users')} where id = ${id}`
   */
  (strings: TemplateStringsArray, ...values: unknown[]): SqlFragment;
  /**
   * A quoted, dot-joined identifier: `sql.identifier('app', 'users')` → `"app"."users"`. Each part is
   * taken literally (no case folding, no parsing). Throws {@link InvalidIdentifierError} for empty parts,
   * NUL characters or parts over 63 bytes.
   */
  identifier(...parts: string[]): SqlFragment;
  /**
   * Join items with a separator (default `, `): fragments are spliced in, other items bound as values.
   *
   * @example sql`insert into t (a, b) values (${sql.join([1, 2])})`
   */
  join(items: readonly unknown[], separator?: SqlFragment): SqlFragment;
}

const COMMA = new SqlFragment(INTERNAL, [', '], []);

/** The `sql` tagged template; see {@link SqlTag}. */
export const sql: SqlTag = Object.assign((strings: TemplateStringsArray, ...values: unknown[]) => build(strings, values), {
  identifier(...parts: string[]): SqlFragment {
    if (parts.length === 0) throw new InvalidIdentifierError('sql.identifier needs at least one part');
    return new SqlFragment(INTERNAL, [parts.map((part) => quoteIdentifier(part)).join('.')], []);
  },
  join(items: readonly unknown[], separator: SqlFragment = COMMA): SqlFragment {
    if (!Array.isArray(items)) throw new QueryArgumentError('sql.join expects an array');
    if (!SqlFragment.is(separator)) throw new QueryArgumentError('sql.join: the separator must be a sql fragment');
    if (items.length === 0) return new SqlFragment(INTERNAL, [''], []);
    const strings = [''];
    const values: unknown[] = [];
    items.forEach((item, i) => {
      if (i > 0) {
        values.push(separator);
        strings.push('');
      }
      values.push(item);
      strings.push('');
    });
    return build(strings, values);
  },
});
