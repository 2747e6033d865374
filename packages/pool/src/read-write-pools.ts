import { type PoolConfig, type PoolConfigInput, resolvePoolConfig } from './config.js';
import { type CloseOptions, type CreatePoolOptions, createPool, type Pool } from './pool.js';

/** Options of {@link createReadWritePools}: the pool options both pools share, plus per-pool overrides. */
export interface ReadWritePoolsOptions extends CreatePoolOptions {
  /** Overrides for the writer pool only (say its own `maxConnections`). */
  writer?: PoolConfigInput;
  /** Overrides for the reader pool only (say `maxReplicationLagMs`, or `targetSessionAttrs: 'standby'`). */
  reader?: PoolConfigInput;
}

/** A writer pool on the primary and a reader pool on the standbys, from one configuration. */
export interface ReadWritePools {
  /** `targetSessionAttrs: 'read-write'`: the primary (after a failover, the promoted standby). For writes and for reads that must see them. */
  readonly writer: Pool;
  /**
   * `targetSessionAttrs: 'prefer-standby'`: a standby within `maxReplicationLagMs`, else the primary.
   * For read-only work that tolerates replication lag.
   */
  readonly reader: Pool;
  /** Close both pools (each as `Pool#close`). */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * Two pools over the same hosts: `writer` (read-write) and `reader` (prefer-standby, skipping any standby
 * whose replay lags more than `maxReplicationLagMs`). The configuration is validated once (one
 * {@link ConfigError} lists every problem); `targetSessionAttrs` in it is ignored, the overrides in
 * `options.writer` / `options.reader` win. Each pool logs through its own child logger (`{ pool: 'writer' }`,
 * `{ pool: 'reader' }`).
 *
 * @example
 * const pools = createReadWritePools({ connectionString: 'postgres://app@db1,db2/app', maxReplicationLagMs: 5000 });
 * await pools.writer.query('insert into audit (what) values ($1)', ['login']);
 * const { rows } = await pools.reader.query('select count(*) from audit');
 */
export function createReadWritePools(config: PoolConfig | PoolConfigInput, options: ReadWritePoolsOptions = {}): ReadWritePools {
  const base = resolvePoolConfig(config);
  const { writer: writerOverrides, reader: readerOverrides, logger, ...shared } = options;
  // The password is not enumerable on a resolved configuration: pass it by name.
  const common: PoolConfigInput = { ...base, password: base.password };
  const writer = createPool(
    { ...common, targetSessionAttrs: 'read-write', ...writerOverrides },
    { ...shared, ...(logger ? { logger: logger.child({ pool: 'writer' }) } : {}) },
  );
  let reader: Pool;
  try {
    reader = createPool(
      { ...common, targetSessionAttrs: 'prefer-standby', ...readerOverrides },
      { ...shared, ...(logger ? { logger: logger.child({ pool: 'reader' }) } : {}) },
    );
  } catch (err) {
    void writer.close({ force: true });
    throw err;
  }
  return {
    writer,
    reader,
    close: async (closeOptions?: CloseOptions) => {
      await Promise.all([writer.close(closeOptions), reader.close(closeOptions)]);
    },
  };
}
