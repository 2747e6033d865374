import type { HealthDocument } from '@accountdb/health';
import { createPool, type Pool } from '@accountdb/pool';
import { createTestDatabase, PostgresServer, TcpProxy, type TestDatabase, testPoolConfig } from '@accountdb/test-db';
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AccountDbApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import type { StartupState } from '../src/startup.js';
import { appOn, TEST_JWT_SECRET } from './helpers.js';

const logger = createLogger({ level: 'silent' });

async function get(app: AccountDbApp, url: string) {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, type: response.headers['content-type'], body: response.json() as HealthDocument };
}

/** Poll readiness until it answers 200 (the pool reconnects with backoff); fail after `deadlineMs`. */
async function eventuallyReady(app: AccountDbApp, deadlineMs = 30_000) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const result = await get(app, '/health/ready');
    if (result.status === 200 || Date.now() > until) return result;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health endpoints on a healthy database', () => {
  let db: TestDatabase;
  let pool: Pool;
  let app: AccountDbApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool({ ...db, sslmode: 'disable', maxConnections: 2 });
    app = await appOn(pool, { logger, readinessTimeoutMs: 500 });
  });
  afterAll(async () => {
    await app.close();
    await pool.close();
    await db.drop();
  });

  test('GET /health/live answers 200 pass as application/health+json', async () => {
    const live = await get(app, '/health/live');
    expect(live.status).toBe(200);
    expect(live.type).toMatch(/^application\/health\+json/);
    expect(live.body.status).toBe('pass');
    expect(live.body.checks['process:uptime']?.[0]).toMatchObject({ status: 'pass', observedUnit: 's' });
  });

  test("GET /health/ready answers 200 with the health statement's response time (@accountdb/health)", async () => {
    const ready = await get(app, '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.type).toMatch(/^application\/health\+json/);
    // `warn` is possible on a loaded machine (a response time past 500 ms); no timing is asserted here.
    expect(['pass', 'warn']).toContain(ready.body.status);
    const check = ready.body.checks['postgresql:responseTime']?.[0];
    expect(check).toMatchObject({ componentType: 'datastore', observedUnit: 'ms' });
    expect(check?.status).not.toBe('fail');
    expect(typeof check?.observedValue).toBe('number');
    expect(Number.isNaN(Date.parse(check?.time ?? ''))).toBe(false);
    expect(pool.stats().active).toBe(0);
  });

  test("an exhausted pool: readiness answers at once, warn (200) with the pool's numbers, without queueing", async () => {
    const leases = [await pool.acquire(), await pool.acquire()];
    try {
      const ready = await get(app, '/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('warn');
      expect(ready.body.output).toMatch(/saturated: 2\/2 in use/);
    } finally {
      for (const lease of leases) lease.release();
    }
    expect((await get(app, '/health/ready')).body.checks['pool:utilization']?.[0]?.status).toBe('pass');
  });

  test('readiness fails and /health/startup reports the phase until start-up is done', async () => {
    const state: StartupState = {
      ready: false,
      progress: {
        phase: 'migrating',
        detail: 'applying 0002_demo_data.sql (2/5)',
        migrationsApplied: 1,
        checkAttempts: 0,
        since: new Date().toISOString(),
      },
    };
    const starting = await appOn(pool, { startup: state });
    const startup = await get(starting, '/health/startup');
    expect(startup.status).toBe(503);
    expect(startup.body.checks['startup:progress']?.[0]).toMatchObject({
      status: 'fail',
      observedValue: 'migrating',
      output: 'applying 0002_demo_data.sql (2/5)',
    });
    const ready = await get(starting, '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.output).toBe('starting: applying 0002_demo_data.sql (2/5)');
    expect((await get(starting, '/health/live')).status).toBe(200);
    Object.assign(state, { ready: true, progress: { ...state.progress, phase: 'ready', detail: 'done' } });
    expect((await get(starting, '/health/startup')).status).toBe(200);
    expect((await get(starting, '/health/ready')).status).toBe(200);
    await starting.close();
  });

  test('a closed pool (shutdown in progress) is not ready', async () => {
    const closing = createPool({ ...db, sslmode: 'disable', minConnections: 0 });
    const closingApp = await appOn(closing, { logger });
    await closing.close();
    const ready = await get(closingApp, '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.output).toMatch(/POOL_CLOSED|closed/);
    await closingApp.close();
  });
});

describe('readiness follows the database going away and coming back', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await PostgresServer.create();
  });
  afterAll(async () => {
    await server.destroy();
  });

  test('server stopped → 503 (liveness stays 200); restarted → 200', async () => {
    const pool = createPool(testPoolConfig(server.fields(), { connectionTimeoutMs: 2_000, retryIntervalMs: 100 }));
    const app = await appOn(pool, { logger, readinessTimeoutMs: 1_000 });
    try {
      expect((await get(app, '/health/ready')).status).toBe(200);

      await server.stop();
      const down = await get(app, '/health/ready');
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('fail');
      expect(down.body.output).toBeTruthy();
      expect(down.body.output).not.toContain(server.password);
      expect((await get(app, '/health/live')).status).toBe(200);
      // A user route while the database is away: 503 with Retry-After, from the one error map.
      const token = createSigner({ key: TEST_JWT_SECRET, expiresIn: 60_000 })({ sub: 1, role: 'user' });
      const route = await app.inject({ url: '/accounts', headers: { authorization: `Bearer ${token}` } });
      expect(route.statusCode).toBe(503);
      expect(route.headers['retry-after']).toBe('5');
      expect(['DATABASE_UNAVAILABLE', 'CONNECTION_LOST']).toContain(route.json().code);
      expect(route.body).not.toContain(server.password);

      await server.start();
      const up = await eventuallyReady(app);
      expect(up.status).toBe(200);
      expect(['pass', 'warn']).toContain(up.body.status);
    } finally {
      await app.close();
      await pool.close({ force: true });
    }
  });

  test('black-holed server (accepts, never answers) → 503 within the bound; traffic restored → 200', async () => {
    const proxy = await TcpProxy.start(server.host, server.port);
    const proxied = { host: '127.0.0.1', port: proxy.port, connectionTimeoutMs: 3_000, retryIntervalMs: 100 };
    const pool = createPool(testPoolConfig(server.fields(), proxied));
    const app = await appOn(pool, { logger, readinessTimeoutMs: 500 });
    try {
      expect((await get(app, '/health/ready')).status).toBe(200);

      proxy.mode = { kind: 'blackhole' };
      // The pooled connection stops answering mid-query: the check gives up and destroys it.
      const stuckQuery = await get(app, '/health/ready');
      expect(stuckQuery.status).toBe(503);
      expect(stuckQuery.body.output).toMatch(/within 500 ms|POOL_TIMEOUT/);
      // New connections hang in the handshake: the acquire wait is bounded too.
      const stuckConnect = await get(app, '/health/ready');
      expect(stuckConnect.status).toBe(503);
      expect(stuckConnect.body.status).toBe('fail');
      expect(stuckConnect.body.output).toMatch(/within 500 ms|No connection is open|POOL_TIMEOUT/);

      proxy.mode = { kind: 'pass' };
      proxy.resetAll();
      expect((await eventuallyReady(app)).status).toBe(200);
    } finally {
      await app.close();
      await pool.close({ force: true });
      await proxy.close();
    }
  });
});
