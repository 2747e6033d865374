import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type OsUser, postgresOsUser, resolvePgBinDir, stopServerProcess } from '@accountdb/local-postgres';
import pg from 'pg';

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

  /** Stop the server and delete its data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
