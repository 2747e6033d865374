import { AccountDbError, describeCause } from '@accountdb/pool';

/** Exact row counts ran past `exactRowCountTimeoutMs` and were cancelled by the server (SQLSTATE 57014). */
export class StatsTimeoutError extends AccountDbError {
  declare readonly code: 'STATS_TIMEOUT';

  constructor(
    readonly timeoutMs: number,
    cause: unknown,
  ) {
    super('STATS_TIMEOUT', `Exact row counts took longer than ${timeoutMs} ms and were cancelled: ${describeCause(cause)}`, {
      cause,
    });
  }
}
