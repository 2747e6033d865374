import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  freePort,
  isClosedToPostgresUser,
  type OsUser,
  postgresOsUser,
  resolvePgBinDir,
  stopServerProcess,
} from '@accountdb/local-postgres';
import { AccountDbError } from '@accountdb/pool';
import pg from 'pg';
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
  /**
   * True when the user chose `dataDir` (`ACCOUNTDB_DATA_DIR`): it is used as given. Otherwise, when
   * running as root in a folder the `postgres` OS user cannot enter (a checkout under `/root`), the
   * cluster is kept under {@link ROOT_DATA_HOME} instead.
   */
  dataDirChosen?: boolean;
  logger: Logger;
  /** Default 60,000 ms. */
  startTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
const DATABASE = 'accountdb';
/** Where a root-run app keeps its cluster when the default folder is closed to the `postgres` OS user. */
export const ROOT_DATA_HOME = '/var/lib/accountdb-api';

/** PostgreSQL servers this process started and has not stopped: killed if the process exits first. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGQUIT');
});

/**
 * Start PostgreSQL from the binaries embedded-postgres ships, with its data in `dataDir` (created
 * and initialised on first use, reused afterwards), on a free loopback port and no Unix socket, with
 * a random password kept in `dataDir/password` (mode 0600). Running as root, the server runs as the
 * `postgres` OS user (created if missing); if the checkout is in a folder that user cannot enter,
 * the binaries are run from a copy in the temp dir and, unless `dataDirChosen`, the data is kept
 * under {@link ROOT_DATA_HOME}.
 */
export async function startEmbeddedPostgres(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  const { logger } = options;
  const log = logger.child({ component: 'embedded-postgres' });
  const osUser = postgresOsUser();
  let dataDir = options.dataDir;
  if (osUser && isClosedToPostgresUser(dirname(dataDir))) {
    if (options.dataDirChosen) {
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL runs as the "postgres" OS user, which cannot reach ${dataDir} (a folder on the way ` +
          'is closed to other users). Set ACCOUNTDB_DATA_DIR to a folder it can reach, or DATABASE_URL to use your own server.',
      );
    }
    const key = createHash('sha256').update(options.dataDir).digest('hex').slice(0, 12);
    dataDir = join(ROOT_DATA_HOME, key);
    log.info(
      { dataDir, insteadOf: options.dataDir },
      'running as root in a folder the postgres OS user cannot enter: keeping the embedded cluster in dataDir instead',
    );
  }
  const clusterDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'password');
  const binDir = resolvePgBinDir();

  mkdirSync(dataDir, { recursive: true });
  // As root the server (user `postgres`) must reach `pg/` but not list the folder or read the password.
  chmodSync(dataDir, osUser ? 0o711 : 0o700);

  const created = !existsSync(join(clusterDir, 'PG_VERSION'));
  let password: string;
  if (created) {
    // No PG_VERSION means no usable cluster: an earlier initialisation was interrupted.
    rmSync(clusterDir, { recursive: true, force: true });
    password = randomBytes(24).toString('base64url');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    chmodSync(passwordFile, 0o600);
    log.info({ dataDir }, 'initialising a new embedded PostgreSQL cluster');
    await initCluster(binDir, clusterDir, password, osUser);
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

  await stopOrphanedServer(dataDir, clusterDir, log);

  const port = await freePort();
  const recentOutput: string[] = [];
  const child = spawn(
    join(binDir, 'postgres'),
    // Loopback only, and no Unix socket: nothing else on the machine should find this server by default.
    ['-D', clusterDir, '-c', `listen_addresses=${HOST}`, '-c', `port=${port}`, '-c', 'unix_socket_directories='],
    { stdio: ['ignore', 'pipe', 'pipe'], ...osUser },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const onOutput = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      recentOutput.push(line.trim());
      if (recentOutput.length > 20) recentOutput.shift();
      log.debug({ source: 'postgres' }, line.trim());
    }
  };
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);

  const connection = { host: HOST, port, user: USER, password };
  try {
    await waitUntilReady(child, connection, options.startTimeoutMs ?? 60_000);
    await ensureDatabase(connection);
  } catch (err) {
    await stopServer(child, 10_000).catch(() => {});
    const tail = recentOutput.slice(-8).join('\n    ');
    throw new EmbeddedPostgresError(
      `Could not start the embedded PostgreSQL in ${clusterDir}: ${(err as Error).message ?? String(err)}` +
        (tail ? `\n  Last server output:\n    ${tail}` : '') +
        '\n  If another instance of the app is using this folder, stop it first; or set DATABASE_URL to use your own server.',
      { cause: err },
    );
  }

  // Which app process owns this server: a later start can tell an orphan from a running instance.
  const ownerFile = join(dataDir, OWNER_FILE);
  writeFileSync(ownerFile, `${process.pid}\n`, { mode: 0o600 });
  child.once('exit', () => rmSync(ownerFile, { force: true }));

  const database: EmbeddedDatabase = {
    host: HOST,
    port,
    user: USER,
    database: DATABASE,
    dataDir,
    created,
    stop: (timeoutMs = 15_000) => stopServer(child, timeoutMs),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
    },
  } as EmbeddedDatabase;
  Object.defineProperty(database, 'password', { value: password, enumerable: false });
  return database;
}

/**
 * initdb into `clusterDir` (created for the server's user, mode 0700). The password goes through a
 * file only the server's user can read, inside the data folder, removed straight after.
 */
async function initCluster(binDir: string, clusterDir: string, password: string, osUser: OsUser | undefined): Promise<void> {
  mkdirSync(clusterDir, { mode: 0o700 });
  const pwfile = join(dirname(clusterDir), `.initdb-password-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (osUser) {
    chownSync(clusterDir, osUser.uid, osUser.gid);
    chownSync(pwfile, osUser.uid, osUser.gid);
  }
  try {
    await promisify(execFile)(
      join(binDir, 'initdb'),
      [
        `--pgdata=${clusterDir}`,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...osUser },
    );
  } catch (err) {
    rmSync(clusterDir, { recursive: true, force: true });
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new EmbeddedPostgresError(`initdb failed for ${clusterDir}${stderr ? `: ${stderr}` : ''}`, { cause: err });
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/** Holds the PID of the app process that started the server in this data folder. */
const OWNER_FILE = 'owner.pid';

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * A server left running by an app process that died without stopping it (SIGKILL, OOM) holds the
 * cluster's lock, and PostgreSQL refuses a second postmaster. If the lock names a live postmaster of
 * this very cluster and the app that started it is gone, stop that server (fast shutdown) so this
 * start can go on. If the owning app is still alive, leave it: the start then fails with the lock
 * error and says so.
 */
async function stopOrphanedServer(dataDir: string, clusterDir: string, log: Logger): Promise<void> {
  const pid = Number.parseInt(readFileOr(join(clusterDir, 'postmaster.pid'), '').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  // Only a postgres whose command line names this cluster (a reused PID is someone else's process).
  const cmdline = readFileOr(`/proc/${pid}/cmdline`, '').split('\0');
  if (!cmdline[0]?.endsWith('postgres') || cmdline[cmdline.indexOf('-D') + 1] !== clusterDir) return;
  const owner = Number.parseInt(readFileOr(join(dataDir, OWNER_FILE), ''), 10);
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) return;
  log.warn({ pid, dataDir }, 'stopping an embedded PostgreSQL left running by an app process that is gone');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // After SIGQUIT the lock file stays; PostgreSQL removes a stale one itself when its PID is gone.
  while (isAlive(pid) && Date.now() < deadline + 10_000) await new Promise((resolve) => setTimeout(resolve, 100));
}

function readFileOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

type Connection = { host: string; port: number; user: string; password: string };

/** Poll until the server accepts a login, it exits, or `timeoutMs` passes. */
async function waitUntilReady(child: ChildProcess, connection: Connection, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('postgres exited during start-up');
    const client = new pg.Client({ ...connection, database: 'postgres', connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      // Only "not up yet" is worth waiting for; a wrong password will not fix itself.
      if ((err as { code?: unknown }).code === '28P01') throw err;
      if (Date.now() > deadline) throw new Error(`postgres did not report ready in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Create the app database on first start (and again if someone dropped it). */
async function ensureDatabase(connection: Connection): Promise<void> {
  const client = new pg.Client({ ...connection, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end();
  }
}

/** Fast shutdown (SIGINT: clients disconnected, data flushed); SIGKILL after `timeoutMs`. */
function stopServer(child: ChildProcess, timeoutMs: number): Promise<void> {
  return stopServerProcess(child, 'SIGINT', timeoutMs); // returns at once if Ctrl-C already stopped it
}
