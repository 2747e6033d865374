import { createHash } from 'node:crypto';
import type { Logger, PoolConnection } from '@accountdb/pool';
import { type LockHolder, MigrationLockTimeoutError } from './errors.js';
import type { HistoryTable } from './history.js';

/** The advisory lock key of a history table: the first 8 bytes of sha256("schema.table"), as a signed bigint. */
export function lockKey(history: HistoryTable): bigint {
  return createHash('sha256').update(`${history.schema}.${history.table}`).digest().readBigInt64BE(0);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const HOLDER_SQL = `SELECT l.pid, a.application_name AS "applicationName", a.backend_start AS since, left(a.query, 200) AS query
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1::oid AND l.objid = $2::oid
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  LIMIT 1`;

/** Who holds the advisory lock `key`, if anyone. */
export async function lockHolder(conn: PoolConnection, key: bigint): Promise<LockHolder | undefined> {
  const unsigned = BigInt.asUintN(64, key);
  const { rows } = await conn.query<LockHolder>(HOLDER_SQL, [(unsigned >> 32n).toString(), (unsigned & 0xffffffffn).toString()]);
  return rows[0];
}

/**
 * Take the session-level advisory lock `key` on `conn` by polling `pg_try_advisory_lock` with backoff until
 * `timeoutMs`. Never a blocking `pg_advisory_lock`: a waiter stuck in that call holds a snapshot, and the
 * holder's CREATE INDEX CONCURRENTLY would wait for it forever. Logs the holder while waiting.
 */
export async function acquireMigrationLock(
  conn: PoolConnection,
  key: bigint,
  timeoutMs: number,
  log: Logger,
  onWait: (waitedMs: number) => void = () => {},
): Promise<void> {
  const started = performance.now();
  let delay = 50;
  let lastLogged = Number.NEGATIVE_INFINITY;
  for (;;) {
    const { rows } = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key.toString()]);
    if (rows[0]?.ok) return;
    const waited = performance.now() - started;
    if (waited >= timeoutMs) {
      throw new MigrationLockTimeoutError('advisory', Math.round(waited), await lockHolder(conn, key).catch(() => undefined));
    }
    if (waited - lastLogged >= 10_000) {
      lastLogged = waited;
      const holder = await lockHolder(conn, key).catch(() => undefined);
      log.info(
        { pid: holder?.pid, applicationName: holder?.applicationName, since: holder?.since, waitedMs: Math.round(waited) },
        'waiting for the migration lock held by another session',
      );
      onWait(Math.round(waited));
    }
    // Jitter so waiters that started together do not poll together.
    await sleep(Math.min(delay * (0.5 + Math.random() / 2), timeoutMs - waited));
    delay = Math.min(delay * 2, 1000);
  }
}

export async function releaseMigrationLock(conn: PoolConnection, key: bigint): Promise<void> {
  await conn.query('SELECT pg_advisory_unlock($1::bigint)', [key.toString()]);
}
