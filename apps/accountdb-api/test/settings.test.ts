import { resolve } from 'node:path';
import { ConfigError } from '@accountdb/pool';
import { describe, expect, test } from 'vitest';
import { APP_QUERY_TIMEOUT_MS, DEFAULT_DATA_DIR, loadSettings } from '../src/settings.js';

describe('loadSettings', () => {
  test('an empty environment means embedded PostgreSQL in apps/accountdb-api/.data, port 3000 on loopback', () => {
    const settings = loadSettings({});
    expect(settings).toMatchObject({ port: 3000, host: '127.0.0.1', logLevel: 'info', readinessTimeoutMs: 2000 });
    expect(settings.embedded).toEqual({ dataDir: DEFAULT_DATA_DIR, dataDirChosen: false });
    expect(DEFAULT_DATA_DIR).toBe(resolve(import.meta.dirname, '..', '.data'));
  });

  test.each([
    ['DATABASE_URL', 'postgres://app@db.example/app'],
    ['DB_HOST', 'db.example'],
    ['PGHOST', 'db.example'],
  ])('%s set means an external database', (name, value) => {
    const settings = loadSettings({ [name]: value });
    expect(settings.embedded).toBeUndefined();
    expect(settings.pool.hosts[0]?.host).toBe('db.example');
  });

  test('queries are bounded by default; DB_QUERY_TIMEOUT_MS or a statement timeout set their own bound', () => {
    expect(loadSettings({}).pool.queryTimeoutMs).toBe(APP_QUERY_TIMEOUT_MS);
    expect(loadSettings({ DB_QUERY_TIMEOUT_MS: '5000' }).pool.queryTimeoutMs).toBe(5000);
    expect(loadSettings({ DB_QUERY_TIMEOUT_MS: '0' }).pool.queryTimeoutMs).toBe(0);
    expect(loadSettings({ DB_STATEMENT_TIMEOUT_MS: '2000', DB_CONNECTION_TIMEOUT: '1' }).pool.queryTimeoutMs).toBe(3000);
    expect(loadSettings({ DB_PASS: 'pw' }).pool.password).toBe('pw');
  });

  test('ACCOUNTDB_DATA_DIR moves the embedded data folder (relative to the working directory)', () => {
    expect(loadSettings({ ACCOUNTDB_DATA_DIR: 'tmp/pgdata' }).embedded).toEqual({
      dataDir: resolve('tmp/pgdata'),
      dataDirChosen: true,
    });
  });

  test('PORT, HOST and timeouts are read', () => {
    const settings = loadSettings({ PORT: '0', HOST: '0.0.0.0', HEALTH_READY_TIMEOUT_MS: '750', SHUTDOWN_TIMEOUT_MS: '0' });
    expect(settings).toMatchObject({ port: 0, host: '0.0.0.0', readinessTimeoutMs: 750, shutdownTimeoutMs: 0 });
  });

  test("one ConfigError lists the app's and the pool's bad variables together", () => {
    let error: unknown;
    try {
      loadSettings({
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        HEALTH_READY_TIMEOUT_MS: '0',
        DB_MAX_CONNECTIONS: 'ten',
        DATABASE_URL: 'mysql://root:pw@db/app',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).problems.map((p) => p.variable).sort();
    expect(variables).toEqual(['DATABASE_URL', 'DB_MAX_CONNECTIONS', 'HEALTH_READY_TIMEOUT_MS', 'LOG_LEVEL', 'PORT']);
    expect((error as ConfigError).message).toContain('PORT: must be an integer from 0 to 65535, got "eighty"');
    expect((error as ConfigError).message).not.toContain('pw@');
  });
});
