import { performance } from 'node:perf_hooks';
import { assertTarget, unmeasured } from './connection.js';
import { type Bounded, describeFailure, type HealthTarget, queryBefore, saturation } from './deadline.js';
import { failed, type HealthCheckResult, type HealthDocument, judged, toDocument } from './document.js';
import { type DatabaseHealthOptions, type Resolved, resolveSingle } from './options.js';

/** Transaction IDs and MultiXact IDs wrap around at 2^31. */
const WRAPAROUND_LIMIT = 2 ** 31;

/**
 * Everything in one statement, one round trip, readable by a non-superuser. Activity columns of other
 * roles' sessions are null unless the login role has pg_read_all_stats (pg_monitor includes it):
 * `sees_all` says which, and connections then come from pg_stat_database.numbackends instead.
 * The marker comment sits after `select` because pg_stat_statements drops leading comments. Never reads query text.
 */
export const DATABASE_HEALTH_SQL = `select /* @accountdb/health */
  current_setting('max_connections')::int as max_connections,
  current_setting('superuser_reserved_connections')::int
    + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) as reserved,
  pg_is_in_recovery() as in_recovery,
  current_setting('transaction_read_only') = 'on' as read_only,
  v.sees_all,
  case when v.sees_all
    then (select count(*) from pg_stat_activity where backend_type = 'client backend')
    else (select sum(numbackends) from pg_stat_database) end::int as connections,
  case when pg_is_in_recovery() then
    case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
      else extract(epoch from now() - pg_last_xact_replay_timestamp()) end
  end::float8 as replication_lag_s,
  case when not pg_is_in_recovery() then (select count(*) from pg_replication_slots where not active) end::int as inactive_slots,
  (select max(age(datfrozenxid)) from pg_database)::int8 as xid_age,
  (select max(mxid_age(datminmxid)) from pg_database)::int8 as mxid_age,
  a.longest_xact_s,
  a.longest_idle_in_xact_s,
  a.blocked
from (select pg_has_role('pg_read_all_stats', 'member') as sees_all) v,
lateral (
  select
    extract(epoch from max(now() - xact_start) filter (where backend_type = 'client backend'))::float8 as longest_xact_s,
    extract(epoch from max(now() - state_change) filter (where state like 'idle in transaction%'))::float8 as longest_idle_in_xact_s,
    count(*) filter (where wait_event_type = 'Lock')::int as blocked
  from pg_stat_activity
  where pid <> pg_backend_pid()
) a`;

interface Row {
  max_connections: number;
  reserved: number;
  in_recovery: boolean;
  read_only: boolean;
  sees_all: boolean;
  connections: number | null;
  replication_lag_s: number | null;
  inactive_slots: number | null;
  xid_age: string | null;
  mxid_age: string | null;
  longest_xact_s: number | null;
  longest_idle_in_xact_s: number | null;
  blocked: number;
}

/** The keys {@link checkDatabaseHealth} reports. */
export const DATABASE_KEYS = [
  'postgresql:connections',
  'postgresql:role',
  'postgresql:replicationLag',
  'postgresql:inactiveReplicationSlots',
  'postgresql:xidAge',
  'postgresql:multixactAge',
  'postgresql:longestTransaction',
  'postgresql:idleInTransaction',
  'postgresql:blockedSessions',
] as const;

/**
 * Seed `check_database_health`, in one round trip: connections vs `max_connections` less reserved
 * slots; primary or standby vs `expect`; replay lag on a standby; inactive replication slots on a
 * primary; XID and MultiXact age vs wraparound; the longest transaction and idle-in-transaction
 * session of other sessions; sessions waiting on locks. Works as a non-superuser; without pg_monitor
 * the activity checks see only the login role's own sessions and say so in `output`. Throws `ConfigError`
 * for bad options; an unreachable or failing database is a `fail` document.
 */
export async function checkDatabaseHealth(db: HealthTarget, options: DatabaseHealthOptions = {}): Promise<HealthDocument> {
  assertTarget(db);
  const o = resolveSingle('database', options);
  const { checks } = await databaseChecks(db, o, performance.now() + o.timeoutMs);
  return toDocument(checks);
}

/** The database checks plus the statement's outcome (checkHealth reuses its round trip as the connection check). */
export async function databaseChecks(
  db: HealthTarget,
  o: NonNullable<Resolved['database']>,
  deadline: number,
): Promise<{ checks: Record<string, HealthCheckResult[]>; outcome: Bounded<Row> | undefined; skipped: string | undefined }> {
  const time = new Date().toISOString();
  const skipped = saturation(db);
  if (skipped) return { checks: { 'postgresql:database': [unmeasured(time, skipped, 'checks')] }, outcome: undefined, skipped };
  const timeoutMs = Math.max(0, Math.round(deadline - performance.now()));
  const outcome = await queryBefore<Row>(db, deadline, DATABASE_HEALTH_SQL);
  const row = outcome.ok ? outcome.rows[0] : undefined;
  if (!outcome.ok || !row) {
    const output = outcome.ok ? 'the health statement returned no row' : describeFailure(outcome, timeoutMs, 'health statement');
    return { checks: { 'postgresql:database': [failed('datastore', 'checks', time, output)] }, outcome, skipped };
  }
  return { checks: judgeRow(row, o, time), outcome, skipped };
}

function judgeRow(row: Row, o: NonNullable<Resolved['database']>, time: string): Record<string, HealthCheckResult[]> {
  const partial = row.sees_all
    ? undefined
    : "partial: without pg_read_all_stats (pg_monitor) only the login role's own sessions are visible";
  const usable = Math.max(1, row.max_connections - row.reserved);
  const used = row.connections ?? 0;
  const connNote = `${used} of ${usable} usable (max_connections ${row.max_connections}, ${row.reserved} reserved)${
    row.sees_all ? '' : '; approximate: counted from pg_stat_database.numbackends (background workers included)'
  }`;
  const connections = judged('datastore', (used / usable) * 100, '%', o.connectionsPercent, 'connectionsPercent', time);
  if (connections.status !== 'pass' || !row.sees_all)
    connections.output = [connections.output, connNote].filter(Boolean).join('; ');

  const role = row.in_recovery ? 'standby' : row.read_only ? 'read-only' : 'primary';
  const roleOk = o.expect === 'any' || o.expect === role;
  const roleCheck: HealthCheckResult = {
    componentType: 'datastore',
    status: roleOk ? 'pass' : 'fail',
    observedValue: role,
    time,
    ...(roleOk ? {} : { output: `server is ${role}, expected ${o.expect} (expect)` }),
  };

  const checks: Record<string, HealthCheckResult[]> = {
    'postgresql:connections': [connections],
    'postgresql:role': [roleCheck],
  };
  if (row.in_recovery) {
    const lag = judged('datastore', row.replication_lag_s, 's', o.replicationLagSeconds, 'replicationLagSeconds', time);
    if (row.replication_lag_s === null) lag.output = 'unknown: nothing replayed yet since the standby started';
    checks['postgresql:replicationLag'] = [lag];
  } else {
    checks['postgresql:inactiveReplicationSlots'] = [
      judged('datastore', row.inactive_slots ?? 0, 'slots', o.inactiveSlots, 'inactiveSlots', time),
    ];
  }
  const wrap = (age: string | null, name: 'xidAge' | 'multixactAge', unit: string) => {
    const check = judged('datastore', age === null ? null : Number(age), unit, o[name], name, time);
    if (check.output) check.output += `; wraparound at ${WRAPAROUND_LIMIT.toLocaleString('en-US')}`;
    return [check];
  };
  checks['postgresql:xidAge'] = wrap(row.xid_age, 'xidAge', 'transactions');
  checks['postgresql:multixactAge'] = wrap(row.mxid_age, 'multixactAge', 'multixacts');
  checks['postgresql:longestTransaction'] = [
    judged('datastore', row.longest_xact_s ?? 0, 's', o.longTransactionSeconds, 'longTransactionSeconds', time, partial),
  ];
  checks['postgresql:idleInTransaction'] = [
    judged(
      'datastore',
      row.longest_idle_in_xact_s ?? 0,
      's',
      o.idleInTransactionSeconds,
      'idleInTransactionSeconds',
      time,
      partial,
    ),
  ];
  checks['postgresql:blockedSessions'] = [
    judged('datastore', row.blocked, 'sessions', o.blockedSessions, 'blockedSessions', time, partial),
  ];
  return checks;
}
