import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '@accountdb/local-postgres';

/** A login PgBouncer accepts from clients and uses, with the same password, towards PostgreSQL. */
export interface PgBouncerUser {
  user: string;
  password: string;
}

export interface PgBouncerOptions {
  /** The PostgreSQL server to pool in front of. */
  targetHost: string;
  targetPort: number;
  /** Roles allowed to connect. More can be added later with {@link PgBouncer.addUser}. */
  users?: PgBouncerUser[];
  /** Default `transaction`: the mode that breaks session-level state. */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** Server connections per user/database pair. Default 20. */
  defaultPoolSize?: number;
  /** The binary. Default `ACCOUNTDB_PGBOUNCER_BIN`, else `pgbouncer` on PATH, `/usr/sbin` or `/usr/bin`. */
  binary?: string;
}

/** Where pgbouncer is, or a clear error saying how to install it (Debian: `apt-get install pgbouncer`). */
export function resolvePgBouncerBinary(): string {
  const fromEnv = process.env.ACCOUNTDB_PGBOUNCER_BIN;
  if (fromEnv) return fromEnv;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) if (dir && existsSync(join(dir, 'pgbouncer'))) return join(dir, 'pgbouncer');
  throw new Error('pgbouncer is not installed (Debian/Ubuntu: apt-get install -y pgbouncer), or set ACCOUNTDB_PGBOUNCER_BIN');
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** pgbouncer refuses to run as root; as root we run it as the `postgres` OS user, as PostgresServer does. */
function osUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

function quote(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

/**
 * A PgBouncer on a free loopback port in front of a test server, in transaction pooling mode by
 * default, with its own temp directory and SCRAM authentication (plain-text `auth_file`, so it can
 * log in to PostgreSQL with the client's password). Every database name maps to the target server.
 */
export class PgBouncer {
  readonly host = '127.0.0.1';
  port = 0;
  readonly dir: string;
  readonly #users = new Map<string, string>();
  readonly #owner: { uid: number; gid: number } | undefined;
  #child: ChildProcess | undefined;
  #stderr = '';

  private constructor(readonly options: PgBouncerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'accountdb-pgbouncer-'));
    this.#owner = osUser();
    if (this.#owner) chownSync(this.dir, this.#owner.uid, this.#owner.gid);
    for (const u of options.users ?? []) this.#users.set(u.user, u.password);
  }

  /** Start pgbouncer and wait until it accepts TCP connections. Throws if the binary is missing. */
  static async start(options: PgBouncerOptions): Promise<PgBouncer> {
    const bouncer = new PgBouncer(options);
    await bouncer.#start();
    return bouncer;
  }

  #writeFile(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    chmodSync(path, 0o600);
    if (this.#owner) chownSync(path, this.#owner.uid, this.#owner.gid);
    return path;
  }

  #writeUsers(): string {
    return this.#writeFile('userlist.txt', [...this.#users].map(([u, p]) => `${quote(u)} ${quote(p)}\n`).join(''));
  }

  async #start(): Promise<void> {
    const binary = this.options.binary ?? resolvePgBouncerBinary();
    this.port = await freePort();
    const authFile = this.#writeUsers();
    const config = this.#writeFile(
      'pgbouncer.ini',
      [
        '[databases]',
        `* = host=${this.options.targetHost} port=${this.options.targetPort}`,
        '[pgbouncer]',
        `listen_addr = ${this.host}`,
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${authFile}`,
        `pool_mode = ${this.options.poolMode ?? 'transaction'}`,
        `default_pool_size = ${this.options.defaultPoolSize ?? 20}`,
        'max_client_conn = 2000',
        'ignore_startup_parameters = extra_float_digits,statement_timeout,options',
        'server_tls_sslmode = disable',
        'log_connections = 0',
        'log_disconnections = 0',
        '',
      ].join('\n'),
    );
    const child = spawn(binary, [config], { stdio: ['ignore', 'ignore', 'pipe'], ...this.#owner });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => {});
    this.#child = child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + 15_000;
    while (!(await Promise.race([this.#accepts(), spawnError]))) {
      if (!this.#child) throw new Error(`pgbouncer exited during start-up: ${this.#stderr}`);
      if (Date.now() > deadline) throw new Error(`pgbouncer did not start in 15 s: ${this.#stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #accepts(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, this.host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }

  /** Allow another role (e.g. one made by `createRestrictedRole()`); pgbouncer reloads its auth file. */
  async addUser(user: string, password: string): Promise<void> {
    this.#users.set(user, password);
    this.#writeUsers();
    this.#child?.kill('SIGHUP');
    // SIGHUP is asynchronous; give pgbouncer a moment to re-read the file.
    await new Promise((r) => setTimeout(r, 200));
  }

  /** Recent stderr of pgbouncer, for failure messages. */
  get log(): string {
    return this.#stderr;
  }

  /** Stop pgbouncer (closing its connections) and delete its directory. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
