import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

test("the README's example runs against an empty database", async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toBeDefined();
  const file = new URL(`./readme-example-${process.pid}.tmp.ts`, import.meta.url);
  writeFileSync(file, (code as string).replace("'@accountdb/maintenance'", "'../src/index.js'"));
  vi.stubEnv('DATABASE_URL', db.url);
  const logged: unknown[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args) => void logged.push(args));
  try {
    await import(/* @vite-ignore */ file.href);
  } finally {
    log.mockRestore();
    vi.unstubAllEnvs();
    rmSync(file, { force: true });
  }
  expect(logged[0]).toEqual([
    expect.objectContaining({ status: 'done', sql: 'VACUUM (ANALYZE TRUE, SKIP_LOCKED TRUE) public.readme_events' }),
  ]);
  expect(logged.at(-1)).toEqual([expect.any(Number), 0, 0]);
});
