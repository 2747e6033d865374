import type { Logger, Queryable } from '@accountdb/pool';

/** What a running maintenance statement reports through PostgreSQL's progress views. */
export interface ProgressSample {
  /** Which view reported it: `vacuum`, `analyze`, `create index` (REINDEX), `cluster` (VACUUM FULL). */
  readonly command: 'vacuum' | 'analyze' | 'create index' | 'cluster';
  /** The server's phase name, e.g. `scanning heap`, `vacuuming indexes`. */
  readonly phase: string;
  /** Blocks done / blocks total of the current scan, 0-100; null when the view has no total yet. */
  readonly percent: number | null;
}

// One statement over the four views (all exist from PostgreSQL 13), for one backend.
const PROGRESS_SQL = `select 'vacuum' as command, phase,
       case when heap_blks_total > 0 then 100.0 * heap_blks_scanned / heap_blks_total end::float8 as percent
  from pg_catalog.pg_stat_progress_vacuum where pid = $1
union all
select 'analyze', phase, case when sample_blks_total > 0 then 100.0 * sample_blks_scanned / sample_blks_total end::float8
  from pg_catalog.pg_stat_progress_analyze where pid = $1
union all
select 'create index', phase, case when blocks_total > 0 then 100.0 * blocks_done / blocks_total
                                   when tuples_total > 0 then 100.0 * tuples_done / tuples_total end::float8
  from pg_catalog.pg_stat_progress_create_index where pid = $1
union all
select 'cluster', phase, case when heap_blks_total > 0 then 100.0 * heap_blks_scanned / heap_blks_total end::float8
  from pg_catalog.pg_stat_progress_cluster where pid = $1`;

/** Default time between two reads of the progress views, ms. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 1_000;

/**
 * Read `pid`'s progress every `intervalMs` on `reader` (a second connection: the one running the
 * statement is busy) until stopped. Reads never overlap; `stop()` waits for one in flight, so no
 * sample arrives after it resolves. A failed read is logged and the next one tried.
 */
export function watchProgress(
  reader: Queryable,
  pid: number,
  intervalMs: number,
  onSample: (sample: ProgressSample) => void,
  log: Logger,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  const read = async () => {
    try {
      const { rows } = await reader.query<ProgressSample>(PROGRESS_SQL, [pid]);
      for (const row of rows) if (!stopped) onSample({ command: row.command, phase: row.phase, percent: row.percent });
    } catch (err) {
      log.debug({ err }, 'reading maintenance progress failed');
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      inflight = read().finally(() => {
        inflight = undefined;
        if (!stopped) schedule();
      });
    }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inflight;
    },
  };
}
