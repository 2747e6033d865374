import { createServer, type Server } from 'node:net';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ConfigError, createPool, loadConfig } from '../src/index.js';

// pg writes startup fields as C strings: a NUL in application_name ends it and starts a new
// parameter, here `options=-c statement_timeout=1234`, which the server applies.
const INJECTED = 'probe\0options\0-c statement_timeout=1234';

let db: TestDatabase;
let canary: Server;
let canaryPort = 0;
let canaryConnections = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  // A listener that only counts: a config refused "before connecting" must never reach it.
  canary = createServer((socket) => {
    canaryConnections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryPort = (canary.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => canary.close(() => resolve()));
  await db.drop();
});

async function statementTimeout(query: (text: string) => Promise<pg.QueryResult>): Promise<string> {
  return (await query('show statement_timeout')).rows[0].statement_timeout;
}

test('the vector is real: raw pg passes a NUL-bearing application_name through and the server applies it', async () => {
  const client = new pg.Client({ ...db, application_name: INJECTED });
  await client.connect();
  try {
    expect(await statementTimeout((t) => client.query(t))).toBe('1234ms');
  } finally {
    await client.end();
  }
});

test('a NUL-bearing application_name is refused before connecting, from env, URL and code', () => {
  const url = `postgres://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@127.0.0.1:${canaryPort}/${db.database}`;
  const attempts: [string, () => unknown][] = [
    ['DB_APPLICATION_NAME', () => createPool(loadConfig({ DATABASE_URL: url, DB_APPLICATION_NAME: INJECTED }))],
    ['PGAPPNAME', () => createPool(loadConfig({ DATABASE_URL: url, PGAPPNAME: INJECTED }))],
    [
      'DATABASE_URL',
      () => createPool(loadConfig({ DATABASE_URL: `${url}?application_name=probe%00options%00-c%20statement_timeout%3D4321` })),
    ],
    ['connectionString', () => createPool({ connectionString: `${url}?application_name=${encodeURIComponent(INJECTED)}` })],
    ['applicationName', () => createPool({ ...db, port: canaryPort, applicationName: INJECTED })],
    ['user', () => createPool({ ...db, port: canaryPort, user: `${db.user}\0options\0-c statement_timeout=1234` })],
    ['database', () => createPool({ ...db, port: canaryPort, database: `${db.database}\0options\0-c statement_timeout=1234` })],
  ];
  for (const [variable, attempt] of attempts) {
    let error: unknown;
    try {
      attempt();
    } catch (err) {
      error = err;
    }
    expect(error, variable).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([variable]);
    expect((error as Error).message).not.toContain('statement_timeout');
  }
  expect(canaryConnections).toBe(0);
});

test('with a clean application_name the server default statement_timeout stands', async () => {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, applicationName: 'probe' });
  try {
    expect(await statementTimeout((t) => pool.query(t))).toBe('0');
    const { rows } = await pool.query('select current_setting($1) as name', ['application_name']);
    expect(rows[0]!.name).toBe('probe');
  } finally {
    await pool.close();
  }
});
