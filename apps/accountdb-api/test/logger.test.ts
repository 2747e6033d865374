import { createPool } from '@accountdb/pool';
import { packageLogger } from '@accountdb/pool/internal';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger } from '../src/logger.js';
import { appOn } from './helpers.js';

/** A pino destination that keeps every line. */
function captureStream() {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(line) }, text: () => lines.join('') };
}

describe('the app logger redacts secrets', () => {
  const secret = 'hunter2-very-secret';

  test('passwords, connection strings and auth headers are censored, at the root and in children', () => {
    const capture = captureStream();
    const logger = createLogger({ level: 'trace', destination: capture.stream });
    logger.info({ password: secret, connectionString: `postgres://app:${secret}@db/app` }, 'root');
    logger.info(
      { config: { password: secret }, env: { DATABASE_URL: `postgres://app:${secret}@db/app`, DB_PASS: secret } },
      'nested',
    );
    logger.info({ req: { headers: { authorization: `Bearer ${secret}`, cookie: `sid=${secret}` } } }, 'request');
    packageLogger(logger, '@accountdb/pool').warn({ options: { password: secret } }, 'library child');
    logger.child({ component: 'x' }).child({ deeper: true }).error({ password: secret }, 'grandchild');

    expect(capture.lines).toHaveLength(5);
    expect(capture.text()).not.toContain(secret);
    const parsed = capture.lines.map((line) => JSON.parse(line));
    expect(parsed[0].password).toBe('[REDACTED]');
    expect(parsed[1].env.DATABASE_URL).toBe('[REDACTED]');
    expect(parsed[2].req.headers.authorization).toBe('[REDACTED]');
    expect(parsed[3]).toMatchObject({ pkg: '@accountdb/pool', options: { password: '[REDACTED]' } });
    expect(parsed[4].password).toBe('[REDACTED]');
  });
});

describe('nothing the app and pool log at trace level contains the database password', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  test('a full request cycle and a failed login', async () => {
    const role = await db.createRestrictedRole();
    const capture = captureStream();
    const logger = createLogger({ level: 'trace', destination: capture.stream });

    const pool = createPool({ ...role, sslmode: 'disable', maxConnections: 1 }, { logger });
    const app = await appOn(pool, { logger });
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    const lease = await pool.acquire();
    const exhausted = await (await appOn(pool, { logger, readinessTimeoutMs: 200 })).inject({ url: '/health/ready' });
    lease.release();
    // Saturation is `warn` (@accountdb/health's default): taking loaded pods out moves their load onto the rest.
    expect(exhausted.json()).toMatchObject({ status: 'warn' });
    await app.close();
    await pool.close();

    const wrongPassword = `${role.password}-wrong`;
    const badPool = createPool({ ...role, password: wrongPassword, sslmode: 'disable', minConnections: 0 }, { logger });
    const badApp = await appOn(badPool, { logger });
    const refused = await badApp.inject({ url: '/health/ready' });
    expect(refused.statusCode).toBe(503);
    expect(refused.body).toMatch(/password authentication failed/);
    expect(refused.body).not.toContain(wrongPassword);
    await badApp.close();
    await badPool.close();

    const text = capture.text();
    expect(text).toContain('pool created');
    expect(text).toContain('readiness changed');
    expect(text).not.toContain(role.password);
    expect(text).not.toContain(wrongPassword);
  });
});
