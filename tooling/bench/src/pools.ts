import { createPool, type Pool } from '@accountdb/pool';
import pg from 'pg';
import type { BenchContext } from './main.js';

/** The contenders every throughput suite compares: raw `pg.Pool`, a second one as CONTROL, and ours — all the same size. */
export interface ContenderPools {
  raw: pg.Pool;
  rawControl: pg.Pool;
  ours: Pool;
  close(): Promise<void>;
}

export function contenderPools(ctx: BenchContext): ContenderPools {
  const { host, port, database, user, password } = ctx.config;
  const max = ctx.poolSize;
  // idleTimeoutMillis 0: pg.Pool would otherwise close connections idle for 10 s while other contenders run.
  const rawConfig = { host, port, database, user, password, max, idleTimeoutMillis: 0 };
  const raw = new pg.Pool(rawConfig);
  const rawControl = new pg.Pool(rawConfig);
  const ours = createPool({ host, port, database, user, password, sslmode: 'disable', maxConnections: max });
  return {
    raw,
    rawControl,
    ours,
    close: async () => {
      await Promise.allSettled([raw.end(), rawControl.end(), ours.close({ force: true })]);
    },
  };
}
