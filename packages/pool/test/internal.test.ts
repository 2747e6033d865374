import { describe, expect, test } from 'vitest';
import {
  beginStatement,
  identifierProblem,
  type NameProblem,
  parseIdentifier,
  parseQualifiedName,
  quoteIdentifier,
  withTimeout,
} from '../src/internal.js';

class NameError extends Error {
  constructor(
    readonly problem: string,
    readonly part: string | undefined,
  ) {
    super(`name ${problem}`);
  }
}
const fail: NameProblem = (problem, part) => new NameError(problem, part);

describe('identifiers', () => {
  test('a qualified name parses as SQL does: unquoted parts fold, quoted parts are literal', () => {
    expect(parseQualifiedName('App.Users', fail)).toEqual({ schema: 'app', name: 'users' });
    expect(parseQualifiedName('"my schema"."my ""table"""', fail)).toEqual({ schema: 'my schema', name: 'my "table"' });
    expect(parseQualifiedName('"a.b"', fail)).toEqual({ schema: null, name: 'a.b' });
    expect(parseQualifiedName({ schema: 'Odd', name: 'x; drop' }, fail)).toEqual({ schema: 'Odd', name: 'x; drop' });
    expect(parseIdentifier('"Email"', fail)).toBe('Email');
  });

  test("bad names become the caller's error, describing the shape and never echoing the text", () => {
    const cases: [unknown, string][] = [
      ['', 'is empty'],
      ['a;b', 'has an unquoted part with characters SQL does not allow there; double-quote it or pass { schema, name }'],
      ['"a"b', 'has characters after a closing quote'],
      ['"open', 'has an unterminated double quote'],
      ['a.', 'ends with a dot'],
      ['a..b', 'has an empty part'],
      ['""', 'has an empty quoted part ("")'],
      ['a.b.c', 'has 3 dotted parts; use name or schema.name'],
      ['x'.repeat(64), 'is 64 bytes; PostgreSQL identifiers are at most 63 bytes (longer ones are truncated)'],
      [42, 'must be a string or { schema, name }'],
    ];
    for (const [input, problem] of cases) {
      expect(() => parseQualifiedName(input as string, fail)).toThrow(new NameError(problem, undefined));
    }
    expect(() => parseQualifiedName({ schema: 'a\0', name: 'b' }, fail)).toThrow(expect.objectContaining({ part: 'schema' }));
    expect(() => parseQualifiedName({ name: '' }, fail)).toThrow(expect.objectContaining({ part: 'name', problem: 'is empty' }));
    expect(() => parseIdentifier('a.b', fail)).toThrow('must be a single identifier');
    expect(identifierProblem(null)).toBe('must be a string (got null)');
    expect(identifierProblem('é'.repeat(31))).toBeUndefined(); // 62 bytes
  });

  test('quoting doubles embedded quotes and refuses what cannot be an identifier', () => {
    expect(quoteIdentifier('a"b', fail)).toBe('"a""b"');
    expect(() => quoteIdentifier('a\0b', fail)).toThrow(NameError);
  });
});

describe('beginStatement', () => {
  const optionError = (field: string, problem: string) => new Error(`${field} ${problem}`);

  test('every option maps to its clause', () => {
    expect(beginStatement({}, optionError)).toBe('BEGIN');
    expect(beginStatement({ isolation: 'serializable', readOnly: true, deferrable: true }, optionError)).toBe(
      'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE',
    );
    expect(beginStatement({ isolation: 'read uncommitted', readOnly: false }, optionError)).toBe(
      'BEGIN ISOLATION LEVEL READ UNCOMMITTED',
    );
  });

  test('bad options throw the caller’s error without echoing the value', () => {
    expect(() => beginStatement({ isolation: 'snapshot; drop' as never }, optionError)).toThrow(
      'isolation must be one of "read committed", "repeatable read", "serializable", "read uncommitted"',
    );
    expect(() => beginStatement({ readOnly: 'yes' as never }, optionError)).toThrow('readOnly must be a boolean');
    expect(() => beginStatement({ deferrable: 1 as never }, optionError)).toThrow('deferrable must be a boolean');
  });
});

describe('withTimeout', () => {
  const never = new Promise<string>(() => {});

  test('the promise wins when it settles first, either way', async () => {
    expect(await withTimeout(Promise.resolve('done'), 60_000, () => 'late')).toBe('done');
    await expect(withTimeout(Promise.reject(new Error('boom')), 60_000, () => 'late')).rejects.toThrow('boom');
  });

  test('after the bound: what onTimeout returns, or its throw as the rejection', async () => {
    expect(await withTimeout(never, 1, () => 'timeout' as const)).toBe('timeout');
    await expect(
      withTimeout(never, 1, () => {
        throw new Error('gave up');
      }),
    ).rejects.toThrow('gave up');
  });

  test('a promise that rejects after losing the race is handled', async () => {
    let rejectLate: (err: Error) => void = () => {};
    const late = new Promise<string>((_, reject) => {
      rejectLate = reject;
    });
    expect(await withTimeout(late, 1, () => 'timeout')).toBe('timeout');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    rejectLate(new Error('too late'));
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
});
