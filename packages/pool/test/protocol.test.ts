import pg from 'pg';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { type EncodableStatement, encodeBatch } from '../src/protocol.js';

// The encoder must put on the wire exactly what pg's own serializer would for the same messages.
const prepareValue = (pg as unknown as { utils: { prepareValue(v: unknown): unknown } }).utils.prepareValue;

function pgBytes(
  statements: readonly EncodableStatement[],
  parses: { name: string; text: string }[],
  parseBefore: number,
  closes: readonly string[] = [],
): Buffer {
  const parts: Buffer[] = [];
  for (const name of closes) parts.push(serialize.close({ type: 'S', name }));
  statements.forEach((s, i) => {
    if (i === parseBefore) for (const p of parses) parts.push(serialize.parse({ name: p.name, text: p.text, types: [] }));
    if (!s.name || s.parse) parts.push(serialize.parse({ name: s.name ?? '', text: s.text, types: [] }));
    parts.push(serialize.bind({ portal: '', statement: s.name ?? '', values: [...(s.values ?? [])], valueMapper: prepareValue }));
    if (!s.discardRows) parts.push(serialize.describe({ type: 'P', name: '' }));
    parts.push(serialize.execute({ portal: '' }));
  });
  parts.push(serialize.sync());
  return Buffer.concat(parts);
}

describe('encodeBatch', () => {
  const cases: [string, EncodableStatement[], { name: string; text: string }[], number, string[]?][] = [
    ['one unnamed statement, no values', [{ text: 'select 1' }], [], 0],
    [
      'text, numbers, null, undefined, booleans, dates',
      [{ text: 'select $1,$2,$3,$4,$5,$6', values: ['a', 42, null, undefined, true, new Date(0)] }],
      [],
      0,
    ],
    ['multi-byte text and empty string', [{ text: 'select $1, $2 -- ünïcødé 🚀', values: ['naïve 🚀 €', ''] }], [], 0],
    ['a Buffer goes binary', [{ text: 'select $1::bytea', values: [Buffer.from([0, 1, 2, 255])] }], [], 0],
    ['arrays and objects as pg maps them', [{ text: 'select $1, $2', values: [[1, 'two', null], { a: 1 }] }], [], 0],
    [
      'prepared context + caller statement, parses up front',
      [
        {
          text: 'ctx',
          name: 'accountdb_rls_set_v2',
          values: ['app.current_user_id', '7', 'app.current_user_role', 'user'],
          discardRows: true,
        },
        { text: 'SELECT * FROM t WHERE id = $1', values: [7] },
      ],
      [{ name: 'accountdb_rls_set_v2', text: 'select where (pg_catalog.set_config($1, $2, true)) is null' }],
      0,
    ],
    [
      'BEGIN first, parses after it',
      [
        { text: 'BEGIN' },
        { text: 'ctx', name: 's1', values: ['x'], discardRows: true },
        { text: 'select 2' },
        { text: 'COMMIT' },
      ],
      [
        { name: 's1', text: 'select $1' },
        { name: 's2', text: 'select $1, $2' },
      ],
      1,
    ],
    [
      'statement cache, first use: named Parse, then Bind to it',
      [{ text: 'select * from t where id = $1', name: 'adb_x_1', parse: true, values: [7] }],
      [],
      0,
    ],
    ['statement cache, later use: Bind to the named statement only', [{ text: 'ignored', name: 'adb_x_1', values: [7] }], [], 0],
    [
      'statement cache eviction: Close before the named Parse',
      [{ text: 'select $1::text', name: 'adb_x_3', parse: true, values: ['€'] }],
      [],
      0,
      ['adb_x_1', 'adb_x_2'],
    ],
    ['a Close with an unnamed statement', [{ text: 'select 1' }], [], 0, ['adb_ü_9']],
    ['a 100 kB value', [{ text: 'select $1', values: ['x'.repeat(100_000)] }], [], 0],
    [
      'long multi-byte values (measured exactly)',
      [{ text: 'select $1, $2', values: ['€'.repeat(5_000), '🚀'.repeat(3_000)] }],
      [],
      0,
    ],
  ];

  for (const [title, statements, parses, parseBefore, closes] of cases) {
    it(`matches pg's serializer byte for byte: ${title}`, () => {
      const ours = encodeBatch(statements, parses, parseBefore, prepareValue, closes);
      expect(ours.equals(pgBytes(statements, parses, parseBefore, closes))).toBe(true);
    });
  }

  it('refuses a NUL byte in statement text or names before encoding anything', () => {
    expect(() => encodeBatch([{ text: 'select 1\0; drop table t' }], [], 0, prepareValue)).toThrow(/NUL byte/);
    expect(() => encodeBatch([{ text: 'select 1', name: 'a\0b' }], [], 0, prepareValue)).toThrow(/NUL byte/);
    expect(() => encodeBatch([{ text: 'select 1' }], [], 0, prepareValue, ['a\0b'])).toThrow(/NUL byte/);
  });

  it('lets a value that cannot be serialised fail the whole batch', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeBatch([{ text: 'select $1', values: [cyclic] }], [], 0, prepareValue)).toThrow();
  });
});
