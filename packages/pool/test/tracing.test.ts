import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPool, type Pool, UniqueViolationError } from '../src/index.js';
import { maskLiterals, operationName } from '../src/tracing.js';

let db: TestDatabase;
const pools: Pool[] = [];
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('accountdb-pool-test');

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table items (id int primary key, name text not null)');
  await db.admin("insert into items values (1, 'one')");
});
afterEach(async () => {
  exporter.reset();
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 2000 })));
});
afterAll(async () => {
  await provider.shutdown();
  await db.drop();
});

function makePool(traced = true): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0 }, traced ? { tracer } : {});
  pools.push(pool);
  return pool;
}

const named = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
const rendered = (spans: readonly ReadableSpan[]) =>
  JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events })));

describe('spans', () => {
  test('pool.query: an acquire span, then one CLIENT span with the database semantic conventions', async () => {
    const pool = makePool();
    await pool.query('select name from items where id = $1', [1]);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['pool.acquire', `SELECT ${db.database}`]);
    const [acquire, query] = spans as [ReadableSpan, ReadableSpan];
    expect(acquire.kind).toBe(SpanKind.INTERNAL);
    expect(acquire.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.namespace': db.database,
      'server.address': db.host,
      'server.port': db.port,
    });
    expect(query.kind).toBe(SpanKind.CLIENT);
    expect(query.attributes).toEqual({
      'db.system.name': 'postgresql',
      'db.namespace': db.database,
      'db.operation.name': 'SELECT',
      'db.query.text': 'select name from items where id = $1',
      'server.address': db.host,
      'server.port': db.port,
      'db.response.returned_rows': 1,
    });
    expect(query.status.code).toBe(SpanStatusCode.UNSET);
  });

  test('withConnection and acquire: one acquire span per lease and one span per statement on it', async () => {
    const pool = makePool();
    await pool.withConnection(async (c) => {
      await c.query('begin');
      await c.query({ text: 'insert into items values ($1, $2)', values: [2, 'two'] });
      await c.query('rollback');
    });
    const lease = await pool.acquire();
    await lease.query('/* hint */ update items set name = name where id = 1');
    lease.release();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([
      'pool.acquire',
      `BEGIN ${db.database}`,
      `INSERT ${db.database}`,
      `ROLLBACK ${db.database}`,
      'pool.acquire',
      `UPDATE ${db.database}`,
    ]);
    expect(named(`INSERT ${db.database}`)[0]?.attributes['db.query.text']).toBe('insert into items values ($1, $2)');
    expect(named(`UPDATE ${db.database}`)[0]?.attributes['db.operation.name']).toBe('UPDATE');
  });

  test('no value reaches a span: parameters are not recorded and literals in plain text are masked', async () => {
    const pool = makePool();
    await pool.query('select $1::text as secret', ['hunter2-parameter']);
    await pool.query("select 'hunter2-literal' as secret, 4242 as n, e'it\\'s' as t, $$dollar-secret$$ as d");
    const spans = exporter.getFinishedSpans();
    expect(rendered(spans)).not.toMatch(/hunter2|4242|dollar-secret|it\\?'s/);
    expect(named(`SELECT ${db.database}`)[1]?.attributes['db.query.text']).toBe('select ? as secret, ? as n, ? as t, ? as d');
  });

  test('a failed statement: status ERROR, the SQLSTATE as db.response.status_code and error.type, no values', async () => {
    const pool = makePool();
    await db.admin("insert into items values (777, 'secret-row')");
    const failure = pool.query('insert into items values ($1, $2)', [777, 'secret-row']);
    await expect(failure).rejects.toBeInstanceOf(UniqueViolationError);
    const [span] = named(`INSERT ${db.database}`);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({ 'db.response.status_code': '23505', 'error.type': '23505' });
    expect(rendered(exporter.getFinishedSpans())).not.toContain('secret-row');
    // The connection went back healthy, and the acquire span did not fail.
    expect(named('pool.acquire')[0]?.status.code).toBe(SpanStatusCode.UNSET);
  });

  test('an acquire that times out ends its span with status ERROR and error.type POOL_TIMEOUT', async () => {
    const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, maxConnections: 1 }, { tracer });
    pools.push(pool);
    const lease = await pool.acquire();
    await expect(pool.acquire({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'POOL_TIMEOUT' });
    lease.release();
    const failed = named('pool.acquire').filter((s) => s.status.code === SpanStatusCode.ERROR);
    expect(failed.map((s) => s.attributes['error.type'])).toEqual(['POOL_TIMEOUT']);
  });

  test("a batch is one CLIENT span with every statement, its size, and the failing statement's SQLSTATE", async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const ok = await lease.batch([{ text: 'select $1::int as a', values: [31337] }, { text: "select 'batch-secret' as b" }]);
    expect(ok.ok).toBe(true);
    const failedBatch = await lease.batch([{ text: 'insert into items values (1, $1)', values: ['dup-secret'] }]);
    expect(failedBatch.ok).toBe(false);
    lease.release();
    const [good, bad] = exporter.getFinishedSpans().filter((s) => s.name.startsWith('BATCH'));
    expect(good?.name).toBe(`BATCH SELECT ${db.database}`);
    expect(good?.kind).toBe(SpanKind.CLIENT);
    expect(good?.attributes).toMatchObject({
      'db.operation.name': 'BATCH SELECT',
      'db.operation.batch.size': 2,
      'db.query.text': 'select $1::int as a; select ? as b',
    });
    expect(bad?.status.code).toBe(SpanStatusCode.ERROR);
    expect(bad?.attributes).toMatchObject({ 'db.response.status_code': '23505', 'error.type': '23505' });
    expect(rendered(exporter.getFinishedSpans())).not.toMatch(/31337|batch-secret|dup-secret/);
  });

  test('a pool without a tracer makes no spans, even with a global tracer provider registered', async () => {
    trace.setGlobalTracerProvider(provider);
    try {
      const pool = makePool(false);
      await pool.query('select 1');
      await pool.withConnection((c) => c.query('select 2'));
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      trace.disable();
    }
  });
});

describe('no runtime dependency on @opentelemetry/api or prom-client', () => {
  const src = join(import.meta.dirname, '..', 'src');
  const files = readdirSync(src).filter((f) => f.endsWith('.ts'));

  test('pool never imports @opentelemetry/api (not even its types), and prom-client only in the prometheus subpath', () => {
    for (const file of files) {
      const text = readFileSync(join(src, file), 'utf8');
      expect(text, file).not.toContain("'@opentelemetry/");
      if (file !== 'prometheus.ts') expect(text, file).not.toContain("'prom-client'");
      expect(text, file).not.toContain("'./prometheus.js'");
    }
  });
});

describe('operationName and maskLiterals', () => {
  test('the first keyword, after comments and parentheses', () => {
    expect(operationName('select 1')).toBe('SELECT');
    expect(operationName('  -- note\n/* x */ (select 1) union (select 2)')).toBe('SELECT');
    expect(operationName('with t as (select 1) delete from x')).toBe('WITH');
    expect(operationName(';')).toBeUndefined();
    expect(operationName('-- only a comment')).toBeUndefined();
  });

  test.each([
    ["select 'a''b' from t1 where x = 10 and y = 1.5e3", 'select ? from t1 where x = ? and y = ?'],
    ["select E'it\\'s', e'\\\\' , 'plain'", 'select ?, ? , ?'],
    ["select $tag$ a 'quote' $tag$, $$x$$, $1, $22::int", 'select ?, ?, $1, $22::int'],
    ['select "col 1", col_2, t3.c4 from "T5" -- 42 in a comment', 'select "col 1", col_2, t3.c4 from "T5" -- 42 in a comment'],
    ["/* 7 */ insert into t values (1, 'x', .5, -2)", '/* 7 */ insert into t values (?, ?, ?, -?)'],
    ["select 'unterminated", 'select ?'],
  ])('%s', (sql, masked) => {
    expect(maskLiterals(sql)).toBe(masked);
  });
});
