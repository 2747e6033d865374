import { oneRow, runStats, type StatsContext, type StatsSource } from './context.js';
import type { StatsOptions } from './options.js';

/** A standby streaming from this server (`pg_stat_replication`). */
export interface Standby {
  readonly pid: number;
  readonly applicationName: string | null;
  readonly clientAddr: string | null;
  readonly state: string | null;
  readonly syncState: string | null;
  /** WAL bytes between this server's current position and what the standby has replayed; null when not visible. */
  readonly replayLagBytes: number | null;
  readonly writeLagMs: number | null;
  readonly flushLagMs: number | null;
  readonly replayLagMs: number | null;
}

/** A replication slot and the WAL it holds back. */
export interface ReplicationSlot {
  readonly name: string;
  readonly type: string;
  readonly database: string | null;
  readonly active: boolean;
  /** WAL kept for this slot (bytes from its restart position to now); null on a standby or before first use. */
  readonly retainedBytes: number | null;
  /** `reserved`, `extended`, `unreserved`, `lost` (PostgreSQL 13+). */
  readonly walStatus: string | null;
}

/** Replication as seen from this server. */
export interface Replication {
  /** True on a standby. */
  readonly inRecovery: boolean;
  /** On a standby: time since the last replayed transaction committed on the primary, ms. */
  readonly replayDelayMs: number | null;
  readonly standbys: readonly Standby[];
  readonly slots: readonly ReplicationSlot[];
  /** Why figures are null, when they are. */
  readonly note: string | null;
}

export async function fetchReplication(ctx: StatsContext): Promise<Replication> {
  // pg_current_wal_lsn() fails on a standby: the CASE keeps it from running there.
  const lsnDiff = (lsn: string) => `case when not pg_is_in_recovery() then pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}) end`;
  const r = await oneRow(
    ctx.q,
    `select pg_is_in_recovery() as "inRecovery",
      (case when pg_is_in_recovery() then extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000 end)::float8 as "replayDelayMs",
      coalesce((select json_agg(json_build_object('pid', r.pid, 'applicationName', r.application_name,
          'clientAddr', host(r.client_addr), 'state', r.state, 'syncState', r.sync_state, 'replayLagBytes', ${lsnDiff('r.replay_lsn')},
          'writeLagMs', extract(epoch from r.write_lag) * 1000, 'flushLagMs', extract(epoch from r.flush_lag) * 1000,
          'replayLagMs', extract(epoch from r.replay_lag) * 1000) order by r.pid) from pg_stat_replication r), '[]') as standbys,
      coalesce((select json_agg(json_build_object('name', s.slot_name, 'type', s.slot_type, 'database', s.database,
          'active', s.active, 'walStatus', s.wal_status, 'retainedBytes', ${lsnDiff('s.restart_lsn')})
          order by s.slot_name) from pg_replication_slots s), '[]') as slots`,
  );
  return {
    ...(r as Replication),
    note:
      r.standbys.length > 0 && !ctx.server.readAllStats
        ? "standbys' positions and lag need pg_read_all_stats (part of pg_monitor)"
        : null,
  };
}

/** Standbys, their lag, and replication slots (or, on a standby, its replay delay). */
export function getReplication(source: StatsSource, options?: StatsOptions): Promise<Replication> {
  return runStats(source, options, fetchReplication);
}
