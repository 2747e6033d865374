/**
 * The frontend messages of one batch (PostgreSQL protocol 3.0, extended query), encoded into a
 * single buffer so the whole flight is one socket write. pg's Connection methods serialise each
 * message into its own buffer and write it separately; at one worker that bookkeeping was a
 * measurable part of a lookup's client time. Same bytes as pg sends: text for strings, binary for
 * Buffers, -1 for null, every result column in text format.
 */

/**
 * One statement's messages: Parse (unless `name` is a prepared statement, or `parse` says to prepare it
 * under that name now), Bind, Describe portal (unless `discardRows`), Execute.
 */
export interface EncodableStatement {
  readonly text: string;
  /** Bind this server-side prepared statement instead of parsing `text` into the unnamed one. */
  readonly name?: string | undefined;
  /** With `name`: Parse `text` under that name just before binding it (the statement cache's first use). */
  readonly parse?: boolean | undefined;
  readonly values?: readonly unknown[] | undefined;
  /** No Describe: the statement's rows are not wanted. */
  readonly discardRows?: boolean | undefined;
}

/** A named statement to Parse before the statement at index `parseBefore` (our prepared context statements). */
export interface EncodedParse {
  readonly name: string;
  readonly text: string;
}

const PARSE = 0x50; // 'P'
const BIND = 0x42; // 'B'
const CLOSE = 0x43; // 'C'
const DESCRIBE = 0x44; // 'D'
const EXECUTE = 0x45; // 'E'
const SYNC = 0x53; // 'S'

const NO_VALUES: readonly unknown[] = [];

// Upper bound of a JS string's UTF-8 length: at most 3 bytes per UTF-16 code unit. Long strings are
// measured exactly instead, so a large value does not cost three times its size in memory.
const maxBytes = (s: string) => (s.length > 1024 ? Buffer.byteLength(s, 'utf8') : s.length * 3);

function parseSize(name: string, text: string): number {
  return 1 + 4 + maxBytes(name) + 1 + maxBytes(text) + 1 + 2;
}

const NO_NAMES: readonly string[] = [];

/**
 * Encode `statements` (with `parses` sent just before statement `parseBefore`, and a Close of each
 * prepared statement in `closes` first of all) and a closing Sync into one buffer. Every value goes through `mapValue` (pg's `prepareValue`) first, which must
 * return null/undefined, a string or a Buffer; if it throws, nothing has been written anywhere.
 */
export function encodeBatch(
  statements: readonly EncodableStatement[],
  parses: readonly EncodedParse[],
  parseBefore: number,
  mapValue: (value: unknown) => unknown,
  closes: readonly string[] = NO_NAMES,
): Buffer {
  const mapped: unknown[] = [];
  let bound = 5;
  for (const name of closes) bound += 1 + 4 + 1 + maxBytes(name) + 1;
  for (const p of parses) bound += parseSize(p.name, p.text);
  for (const s of statements) {
    const name = s.name ?? '';
    if (!name || s.parse) bound += parseSize(name, s.text);
    const values = s.values ?? NO_VALUES;
    bound += 1 + 4 + 1 + maxBytes(name) + 1 + 2 + 2 * values.length + 2 + 2 + 2 + (s.discardRows ? 0 : 7) + 10;
    for (const raw of values) {
      const v = mapValue(raw);
      mapped.push(v);
      bound += 4 + (v == null ? 0 : Buffer.isBuffer(v) ? v.length : maxBytes(v as string));
    }
  }
  const buf = Buffer.allocUnsafe(bound);
  let at = 0;
  const cstring = (s: string) => {
    // A NUL would end the string early and desynchronise the protocol: refuse before writing.
    if (s.includes('\0')) throw new TypeError('Statement text and names must not contain a NUL byte');
    at += buf.write(s, at, 'utf8');
    buf[at++] = 0;
  };
  const begin = (code: number) => {
    buf[at] = code;
    at += 5; // length, filled by end()
    return at - 4;
  };
  const end = (lengthAt: number) => buf.writeInt32BE(at - lengthAt, lengthAt);
  const parse = (name: string, text: string) => {
    const l = begin(PARSE);
    cstring(name);
    cstring(text);
    at = buf.writeInt16BE(0, at); // parameter types: let the server infer them, as pg does
    end(l);
  };

  for (const name of closes) {
    const l = begin(CLOSE);
    buf[at++] = 0x53; // 'S'tatement
    cstring(name);
    end(l);
  }
  let next = 0; // into `mapped`
  statements.forEach((s, i) => {
    const name = s.name ?? '';
    if (i === parseBefore) for (const p of parses) parse(p.name, p.text);
    if (!name || s.parse) parse(name, s.text);

    const l = begin(BIND);
    buf[at++] = 0; // unnamed portal
    cstring(name);
    const n = s.values?.length ?? 0;
    at = buf.writeInt16BE(n, at);
    const formats = at;
    at += 2 * n;
    at = buf.writeInt16BE(n, at);
    for (let k = 0; k < n; k++) {
      const v = mapped[next++];
      let format = 0;
      if (v == null) at = buf.writeInt32BE(-1, at);
      else if (Buffer.isBuffer(v)) {
        format = 1;
        at = buf.writeInt32BE(v.length, at);
        at += v.copy(buf, at);
      } else {
        const lengthAt = at;
        at += 4;
        at += buf.write(v as string, at, 'utf8');
        buf.writeInt32BE(at - lengthAt - 4, lengthAt);
      }
      buf.writeInt16BE(format, formats + 2 * k);
    }
    at = buf.writeInt16BE(1, at); // one result format code for every column:
    at = buf.writeInt16BE(0, at); // text
    end(l);

    if (!s.discardRows) {
      const d = begin(DESCRIBE);
      buf[at++] = 0x50; // 'P'ortal
      buf[at++] = 0; // unnamed
      end(d);
    }
    const e = begin(EXECUTE);
    buf[at++] = 0; // unnamed portal
    at = buf.writeInt32BE(0, at); // no row limit
    end(e);
  });
  buf[at] = SYNC;
  buf.writeInt32BE(4, at + 1);
  at += 5;
  return buf.subarray(0, at);
}
