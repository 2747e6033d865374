import { num, oneRow, runStats, type StatsContext, type StatsSource } from './context.js';
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
  const r = await oneRow(
    ctx.q,
    `
    select pg_is_in_recovery() as in_recovery,
      case when pg_is_in_recovery() then extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000 end as replay_delay_ms,
      coalesce((select json_agg(json_build_object('pid', r.pid, 'application_name', r.application_name,
          'client_addr', host(r.client_addr), 'state', r.state, 'sync_state', r.sync_state,
          'replay_lag_bytes', case when not pg_is_in_recovery() then pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) end,
          'write_lag_ms', extract(epoch from r.write_lag) * 1000, 'flush_lag_ms', extract(epoch from r.flush_lag) * 1000,
          'replay_lag_ms', extract(epoch from r.replay_lag) * 1000) order by r.pid) from pg_stat_replication r), '[]') as standbys,
      coalesce((select json_agg(json_build_object('name', s.slot_name, 'type', s.slot_type, 'database', s.database,
          'active', s.active, 'wal_status', s.wal_status,
          'retained_bytes', case when not pg_is_in_recovery() then pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn) end)
          order by s.slot_name) from pg_replication_slots s), '[]') as slots`,
  );
  const standbys: Standby[] = r.standbys.map((s: Record<string, unknown>) => ({
    pid: s.pid,
    applicationName: s.application_name ?? null,
    clientAddr: s.client_addr ?? null,
    state: s.state ?? null,
    syncState: s.sync_state ?? null,
    replayLagBytes: num(s.replay_lag_bytes),
    writeLagMs: num(s.write_lag_ms),
    flushLagMs: num(s.flush_lag_ms),
    replayLagMs: num(s.replay_lag_ms),
  }));
  return {
    inRecovery: r.in_recovery,
    replayDelayMs: num(r.replay_delay_ms),
    standbys,
    slots: r.slots.map((s: Record<string, unknown>) => ({
      name: s.name,
      type: s.type,
      database: s.database ?? null,
      active: s.active,
      retainedBytes: num(s.retained_bytes),
      walStatus: s.wal_status ?? null,
    })),
    note:
      standbys.length > 0 && !ctx.server.readAllStats
        ? "standbys' positions and lag need pg_read_all_stats (part of pg_monitor)"
        : null,
  };
}

/** Standbys, their lag, and replication slots (or, on a standby, its replay delay). */
export function getReplication(source: StatsSource, options?: StatsOptions): Promise<Replication> {
  return runStats(source, options, fetchReplication);
}
