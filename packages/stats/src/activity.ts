import { count, runStats, type StatsContext, type StatsSource } from './context.js';
import type { StatsOptions } from './options.js';

/** One client session from `pg_stat_activity` (this call's own session left out). */
export interface Session {
  readonly pid: number;
  readonly database: string | null;
  readonly user: string | null;
  readonly applicationName: string | null;
  /** Client address; null for Unix-socket connections or when not visible. */
  readonly clientAddr: string | null;
  /** `active`, `idle`, `idle in transaction`, ...; null when not visible to this role. */
  readonly state: string | null;
  readonly waitEventType: string | null;
  readonly waitEvent: string | null;
  /** Query text; null when this role may not see it (see `note`). */
  readonly query: string | null;
  /** Time since the current (or last) query started, ms. */
  readonly queryMs: number | null;
  /** Time since the transaction started, ms; null outside a transaction. */
  readonly transactionMs: number | null;
  /** Sessions holding locks this one waits for. */
  readonly blockedBy: readonly number[];
  readonly note: string | null;
}

const HIDDEN = "another role's session: its state and query need pg_read_all_stats (part of pg_monitor)";

export async function fetchSessions(ctx: StatsContext): Promise<Session[]> {
  // pg_blocking_pids is costly: only for sessions waiting on a lock. Another role's session shows
  // a null backend_type to a role without pg_read_all_stats: it is listed, hidden.
  const { rows } = await ctx.q.query(
    `select a.pid, a.datname as database, a.usename as user, case when not hidden then a.application_name end as "applicationName",
      host(a.client_addr) as "clientAddr", a.state, a.wait_event_type as "waitEventType", a.wait_event as "waitEvent",
      case when not hidden then a.query end as query,
      (extract(epoch from clock_timestamp() - a.query_start) * 1000)::float8 as "queryMs",
      (extract(epoch from clock_timestamp() - a.xact_start) * 1000)::float8 as "transactionMs",
      case when a.wait_event_type = 'Lock' then pg_blocking_pids(a.pid) else '{}' end as "blockedBy",
      case when hidden then $1 end as note
    from pg_stat_activity a, lateral (select a.query = '<insufficient privilege>' as hidden) h
    where coalesce(a.backend_type, 'client backend') = 'client backend' and a.pid <> pg_backend_pid()
    order by a.pid`,
    [HIDDEN],
  );
  return rows as Session[];
}

/** Client connections counted by state, user, application and client address. */
export interface Connections {
  readonly total: number;
  /** `max_connections`. */
  readonly max: number;
  readonly byState: Readonly<Record<string, number>>;
  readonly byUser: Readonly<Record<string, number>>;
  readonly byApplication: Readonly<Record<string, number>>;
  readonly byClient: Readonly<Record<string, number>>;
}

function tally(sessions: readonly Session[], key: (s: Session) => string | null, hidden: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sessions) {
    const k = key(s) ?? hidden;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export function toConnections(sessions: readonly Session[], ctx: StatsContext): Connections {
  const byState = tally(sessions, (s) => s.state, '(not visible)');
  // The session asking is a connection too (active), though left out of every list.
  byState.active = (byState.active ?? 0) + 1;
  return {
    total: sessions.length + 1,
    max: count(ctx.server.settings.max_connections),
    byState,
    byUser: tally(sessions, (s) => s.user, '(unknown)'),
    byApplication: tally(sessions, (s) => s.applicationName, '(not visible)'),
    byClient: tally(sessions, (s) => s.clientAddr, '(local or not visible)'),
  };
}

/** Sessions whose query, or transaction, has run for at least `longRunningMs`; longest first. */
export function toLongRunning(sessions: readonly Session[], longRunningMs: number): Session[] {
  return sessions
    .filter(
      (s) =>
        (s.state !== 'idle' && s.state !== null && (s.queryMs ?? -1) >= longRunningMs) ||
        (s.transactionMs ?? -1) >= longRunningMs,
    )
    .sort((a, b) => Math.max(b.queryMs ?? 0, b.transactionMs ?? 0) - Math.max(a.queryMs ?? 0, a.transactionMs ?? 0));
}

/** A session and the sessions waiting on it (who blocks whom). */
export interface BlockingNode {
  readonly pid: number;
  /** The session, or null when it is not a client backend this role can list (e.g. autovacuum). */
  readonly session: Session | null;
  readonly blocking: readonly BlockingNode[];
}

/**
 * The blocking forest: roots are sessions that block others and wait on nobody; a session
 * waiting on several appears under each. Cycles (a deadlock about to be broken) are cut.
 */
export function toBlockingTree(sessions: readonly Session[]): BlockingNode[] {
  const byPid = new Map(sessions.map((s) => [s.pid, s]));
  const waiters = new Map<number, number[]>();
  for (const s of sessions) for (const b of s.blockedBy) waiters.set(b, [...(waiters.get(b) ?? []), s.pid]);
  const build = (pid: number, seen: ReadonlySet<number>): BlockingNode => ({
    pid,
    session: byPid.get(pid) ?? null,
    blocking: (waiters.get(pid) ?? []).filter((w) => !seen.has(w)).map((w) => build(w, new Set([...seen, w]))),
  });
  const roots = [...waiters.keys()].filter((pid) => (byPid.get(pid)?.blockedBy.length ?? 0) === 0);
  return roots.sort((a, b) => a - b).map((pid) => build(pid, new Set([pid])));
}

/** Connections by state, user, application and client. */
export function getConnections(source: StatsSource, options?: StatsOptions): Promise<Connections> {
  return runStats(source, options, async (ctx) => toConnections(await fetchSessions(ctx), ctx));
}

/** Queries and transactions running longer than `longRunningMs` (default 60 s). */
export function getLongRunningQueries(source: StatsSource, options?: StatsOptions): Promise<Session[]> {
  return runStats(source, options, async (ctx) => toLongRunning(await fetchSessions(ctx), ctx.options.longRunningMs));
}

/** Who blocks whom, via `pg_blocking_pids`, as a tree. Empty when nothing waits on a lock. */
export function getBlockedQueries(source: StatsSource, options?: StatsOptions): Promise<BlockingNode[]> {
  return runStats(source, options, async (ctx) => toBlockingTree(await fetchSessions(ctx)));
}
