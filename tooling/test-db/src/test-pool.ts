import type { ConnectionFields } from './test-database.js';

/** The settings every test pool starts from (see {@link testPoolConfig}). */
interface TestPoolDefaults extends ConnectionFields {
  sslmode: 'disable';
  minConnections: number;
  maxConnections: number;
}

/**
 * A pool config (the shape `createPool` of `@accountdb/pool` takes) for a test database or server:
 * its connection fields, no TLS, no background connects a test did not ask for (`minConnections: 0`),
 * at most four connections; `extra` wins. Test-db cannot depend on the pool (the pool's tests depend
 * on test-db), so packages pass this to their own `createPool`.
 */
export function testPoolConfig<E extends object = Record<never, never>>(
  db: ConnectionFields,
  extra?: E,
): Omit<TestPoolDefaults, keyof E> & E {
  const defaults: TestPoolDefaults = {
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 4,
  };
  const config: TestPoolDefaults & E = { ...defaults, ...(extra as E) };
  return config;
}
