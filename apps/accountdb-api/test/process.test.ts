import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool } from '@accountdb/pool';
import { createTestDatabase, PostgresServer, TcpProxy, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

// The built program, exactly what `pnpm start` runs (tests run after `turbo run build`).
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** The app as a child process, with its JSON log lines parsed as they arrive. */
class AppProcess {
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;
  #waiters: (() => void)[] = [];

  constructor(env: Record<string, string>) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "pnpm turbo run build --filter=@accountdb/api..." first`);
    // A clean environment: the test runner's DATABASE_URL/PG*/DB_* must not leak into the app.
    this.#child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      const parts = this.stdout.split('\n');
      for (const line of parts.slice(this.lines.length, -1)) this.lines.push({ msg: '', ...JSON.parse(line) } as LogLine);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
    void this.exited.then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** The first log line matching `predicate`; fails if the process exits or `timeoutMs` passes first. */
  async waitFor(predicate: (line: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found) return found;
      if (this.#child.exitCode !== null || Date.now() > until) {
        throw new Error(`log line not seen (exit ${this.#child.exitCode}); stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** The URL the server listens on, from Fastify's "Server listening at" line, once start-up is done. */
  async url(): Promise<string> {
    await this.waitFor((l) => l.msg === 'ready: serving requests');
    const line = await this.waitFor((l) => l.msg.startsWith('Server listening at '));
    return line.msg.slice('Server listening at '.length);
  }

  signal(name: NodeJS.Signals): void {
    this.#child.kill(name);
  }

  messages(): string[] {
    return this.lines.map((l) => l.msg);
  }
}

async function countBackends(db: TestDatabase, applicationName: string): Promise<number> {
  const { rows } = await db.admin('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
    applicationName,
  ]);
  return rows[0].n as number;
}

describe('the app process', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  test('an invalid environment prints every bad variable and exits 1', async () => {
    const app = new AppProcess({ PORT: 'http', DB_MAX_CONNECTIONS: 'ten', DATABASE_URL: 'postgres://u:topsecret@h:99999/db' });
    expect(await app.exited).toBe(1);
    expect(app.stderr).toContain('PORT: must be an integer');
    expect(app.stderr).toContain('DB_MAX_CONNECTIONS');
    expect(app.stderr).toContain('DATABASE_URL');
    expect(app.stderr).not.toContain('topsecret');
    expect(app.stdout).toBe('');
  });

  test('a failed init_database check stops the app (exit 1) with what to fix', async () => {
    const env = { DATABASE_URL: `${db.url}?sslmode=disable`, PORT: '0', INIT_MAX_RETRIES: '1', INIT_RETRY_INTERVAL_MS: '10' };
    const first = new AppProcess(env); // applies the migrations
    await first.url();
    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);

    await db.admin('alter table cards no force row level security');
    try {
      const second = new AppProcess(env);
      expect(await second.exited).toBe(1);
      expect(second.stderr).toContain('The database is not ready for the app (after 2 attempts)');
      expect(second.stderr).toContain(
        'table cards has Row-Level Security enabled but not FORCEd: apply migrations/R__row_level_security.sql',
      );
      expect(second.messages()).toContain('start-up failed');
      expect(second.messages()).not.toContain('ready: serving requests');
    } finally {
      await db.admin('alter table cards force row level security');
    }
  });

  test('SIGTERM stops the HTTP server, drains the pool and exits 0, leaving no connection behind', async () => {
    const applicationName = `api_sigterm_${process.pid}`;
    const app = new AppProcess({
      DATABASE_URL: `${db.url}?sslmode=disable&application_name=${applicationName}`,
      PORT: '0',
      LOG_LEVEL: 'debug',
      DB_MIN_CONNECTIONS: '2',
    });
    const url = await app.url();
    const ready = await fetch(`${url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await countBackends(db, applicationName)).toBeGreaterThan(0);

    app.signal('SIGTERM');
    expect(await app.exited).toBe(0);
    const messages = app.messages();
    const order = ['shutting down', 'pool closed', 'stopped cleanly'].map((m) => messages.findIndex((x) => x.startsWith(m)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(app.stdout).not.toContain(db.password);

    // The backends end just after the client disconnects; allow the server a moment to notice.
    let remaining = await countBackends(db, applicationName);
    for (let i = 0; i < 50 && remaining > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      remaining = await countBackends(db, applicationName);
    }
    expect(remaining).toBe(0);
  });

  test('a start-up failure (port taken) exits 1 after closing what it opened', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const app = new AppProcess({ DATABASE_URL: `${db.url}?sslmode=disable`, PORT: String(port), LOG_LEVEL: 'debug' });
      expect(await app.exited).toBe(1);
      const fatal = app.lines.find((l) => l.msg === 'start-up failed');
      expect(fatal?.err).toMatchObject({ code: 'EADDRINUSE' });
      expect(app.messages()).toContain('pool closed');
    } finally {
      blocker.close();
    }
  });

  test('a second signal forces the exit while shutdown is still waiting', async () => {
    const server = await PostgresServer.create();
    const proxy = await TcpProxy.start(server.host, server.port);
    try {
      const app = new AppProcess({
        DATABASE_URL: `postgres://${server.user}:${server.password}@127.0.0.1:${proxy.port}/postgres?sslmode=disable`,
        PORT: '0',
        HEALTH_READY_TIMEOUT_MS: '120000',
        HEALTH_READY_CACHE_MS: '0',
        SHUTDOWN_TIMEOUT_MS: '120000',
        // No background reconnects: a connection through the proxy can then only come from the request.
        DB_MIN_CONNECTIONS: '0',
      });
      const url = await app.url();
      expect((await fetch(`${url}/health/ready`)).status).toBe(200);
      // A readiness request stuck on a black-holed database keeps the first shutdown waiting.
      proxy.mode = { kind: 'blackhole' };
      proxy.resetAll();
      const stuck = fetch(`${url}/health/ready`).catch((err: unknown) => err);
      while (proxy.connections === 0) await new Promise((r) => setTimeout(r, 20));
      app.signal('SIGTERM');
      await app.waitFor((l) => l.msg.startsWith('shutting down'));
      app.signal('SIGTERM');
      expect(await app.exited).toBe(143);
      expect(app.messages()).toContain('second signal: exiting without waiting');
      expect(app.messages()).not.toContain('stopped cleanly');
      await stuck;
    } finally {
      await proxy.close();
      await server.destroy();
    }
  });
});

describe('embedded PostgreSQL (no DATABASE_URL)', () => {
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'accountdb-api-data-'));
    // mkdtemp makes 0700; as root the server runs as `postgres`, which must pass through.
    chmodSync(dataDir, 0o755);
  });
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('creates a cluster on first start, reuses it (and its data) on the second, stops cleanly both times', async () => {
    // Debug level: the server's and initdb's own output is logged too, and must not show the password either.
    const env = { ACCOUNTDB_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'debug' };

    const first = new AppProcess(env);
    await first.waitFor((l) => l.msg.startsWith('no DATABASE_URL'));
    const created = await first.waitFor((l) => l.msg.startsWith('embedded PostgreSQL'));
    expect(created).toMatchObject({ created: true, dataDir, host: '127.0.0.1' });
    expect((await fetch(`${await first.url()}/health/ready`)).status).toBe(200);

    // A second instance on the same folder must refuse clearly and leave the first one alone.
    const intruder = new AppProcess(env);
    expect(await intruder.exited).toBe(1);
    expect(intruder.stderr).toMatch(/Could not start the embedded PostgreSQL/);
    expect(intruder.stderr).toMatch(/postmaster\.pid/);
    expect((await fetch(`${await first.url()}/health/ready`)).status).toBe(200);

    const passwordFile = join(dataDir, 'password');
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
    const password = readFileSync(passwordFile, 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(24);
    const connection = { host: '127.0.0.1', user: 'postgres', password, database: 'accountdb', sslmode: 'disable' as const };
    const writer = createPool({ ...connection, port: created.port as number, minConnections: 0 });
    await writer.query('CREATE TABLE survives_restart (id int)');
    await writer.query('INSERT INTO survives_restart VALUES (42)');
    await writer.close();

    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.messages()).toContain('stopped cleanly');
    // A clean PostgreSQL shutdown removes its lock file.
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const second = new AppProcess(env);
    const reused = await second.waitFor((l) => l.msg.startsWith('embedded PostgreSQL'));
    expect(reused).toMatchObject({ created: false, dataDir });
    expect((await fetch(`${await second.url()}/health/ready`)).status).toBe(200);
    const reader = createPool({ ...connection, port: reused.port as number, minConnections: 0 });
    const { rows } = await reader.query('SELECT id FROM survives_restart');
    await reader.close();
    expect(rows).toEqual([{ id: 42 }]);

    second.signal('SIGINT');
    expect(await second.exited).toBe(0);
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    expect(first.stdout + second.stdout).not.toContain(password);
  }, 180_000); // two cold starts with initdb: slow on a loaded 2-core machine

  test('after the app was SIGKILLed, the next start stops the orphaned server and starts again', async () => {
    const env = { ACCOUNTDB_DATA_DIR: dataDir, PORT: '0' };
    const killed = new AppProcess(env);
    await killed.waitFor((l) => l.msg.startsWith('embedded PostgreSQL'));
    const lockFile = join(dataDir, 'pg', 'postmaster.pid');
    const orphan = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
    killed.signal('SIGKILL');
    await killed.exited;
    expect(isAlive(orphan)).toBe(true); // nothing stopped it: it holds the cluster's lock

    const next = new AppProcess(env);
    const warning = await next.waitFor((l) => l.msg.startsWith('stopping an embedded PostgreSQL left running'));
    expect(warning).toMatchObject({ pid: orphan, dataDir });
    expect(await next.waitFor((l) => l.msg.startsWith('embedded PostgreSQL'))).toMatchObject({ created: false });
    expect((await fetch(`${await next.url()}/health/ready`)).status).toBe(200);
    expect(isAlive(orphan)).toBe(false);

    next.signal('SIGTERM');
    expect(await next.exited).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  }, 180_000);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
