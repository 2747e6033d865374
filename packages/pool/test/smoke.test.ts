import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createPool } from '../src/index.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

test('query through the pool', async () => {
  const pool = createPool({ ...db, sslmode: 'disable' });
  const { rows } = await pool.query<{ n: number }>('select 1::int as n');
  expect(rows[0]?.n).toBe(1);
  await pool.close();
});
