import { runStats, type ServerInfo, type StatsSource } from './context.js';
import type { StatsOptions } from './options.js';
import { fetchTables, type TableFacts } from './tables.js';

const COUNTERS = [
  ...['schema', 'name', 'liveTuples', 'deadTuples', 'modifiedSinceAnalyze', 'insertedSinceVacuum'],
  ...['lastVacuum', 'lastAutovacuum', 'lastAnalyze', 'lastAutoanalyze'],
] as const;

/** Dead tuples, last (auto)vacuum/analyze, and whether autovacuum is due by its own formula. */
export type TableVacuumStats = Pick<TableFacts, (typeof COUNTERS)[number]> & {
  /** False when autovacuum is off for this table (`autovacuum_enabled=off`) or for the server. */
  readonly autovacuumEnabled: boolean;
  /** Dead tuples past which autovacuum vacuums: threshold + scale factor × reltuples (capped by `autovacuum_vacuum_max_threshold` on 18+). */
  readonly vacuumThreshold: number;
  /** Inserts past which autovacuum vacuums (PostgreSQL 13+). */
  readonly insertThreshold: number | null;
  /** Modifications past which autovacuum analyzes. */
  readonly analyzeThreshold: number;
  /** Dead tuples or inserts are over their threshold. */
  readonly vacuumDue: boolean;
  readonly analyzeDue: boolean;
  /** When the counters above last restarted (`pg_stat_database.stats_reset`); null = never. */
  readonly statsReset: Date | null;
};

function setting(t: TableFacts, server: ServerInfo, name: string): number {
  const own = t.reloptions[name];
  const value = Number(own ?? server.settings[name]);
  return Number.isFinite(value) ? value : 0;
}

export function toVacuumStats(tables: readonly TableFacts[], server: ServerInfo): TableVacuumStats[] {
  return tables
    .filter((t) => t.kind === 'table')
    .map((t) => {
      const tuples = Math.max(t.reltuples ?? 0, 0);
      let vacuumThreshold =
        setting(t, server, 'autovacuum_vacuum_threshold') + setting(t, server, 'autovacuum_vacuum_scale_factor') * tuples;
      const max = setting(t, server, 'autovacuum_vacuum_max_threshold');
      if (server.versionNum >= 180000 && max > 0) vacuumThreshold = Math.min(vacuumThreshold, max);
      const insertBase = setting(t, server, 'autovacuum_vacuum_insert_threshold');
      const insertThreshold =
        server.versionNum >= 130000 && insertBase >= 0
          ? insertBase + setting(t, server, 'autovacuum_vacuum_insert_scale_factor') * tuples
          : null;
      const analyzeThreshold =
        setting(t, server, 'autovacuum_analyze_threshold') + setting(t, server, 'autovacuum_analyze_scale_factor') * tuples;
      const enabled =
        server.settings.autovacuum !== 'off' && !/^(off|false|no|0)$/i.test(t.reloptions.autovacuum_enabled ?? 'on');
      return {
        ...(Object.fromEntries(COUNTERS.map((k) => [k, t[k]])) as Pick<TableFacts, (typeof COUNTERS)[number]>),
        autovacuumEnabled: enabled,
        vacuumThreshold,
        insertThreshold,
        analyzeThreshold,
        vacuumDue: t.deadTuples > vacuumThreshold || (insertThreshold !== null && t.insertedSinceVacuum > insertThreshold),
        analyzeDue: t.modifiedSinceAnalyze > analyzeThreshold,
        statsReset: server.statsReset,
      };
    })
    .sort((a, b) => b.deadTuples - a.deadTuples);
}

/** Vacuum figures per table, most dead tuples first. */
export function getVacuumStats(source: StatsSource, options?: StatsOptions): Promise<TableVacuumStats[]> {
  return runStats(source, options, async (ctx) => {
    return toVacuumStats(await fetchTables(ctx), ctx.server);
  });
}
