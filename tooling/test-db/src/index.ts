export { freePort, resolvePgBinDir } from '@accountdb/local-postgres';
export { CONSTRAINT_TABLES_SQL } from './constraint-tables.js';
export { PgBouncer, type PgBouncerOptions, type PgBouncerUser, resolvePgBouncerBinary } from './pgbouncer.js';
export {
  DEBIAN_PG15_BIN_DIR,
  hasBaseBackup,
  PostgresServer,
  type PostgresServerOptions,
  type StandbyOptions,
} from './postgres-server.js';
export { RoundTripCounter, StatementCounter } from './round-trips.js';
export { type AdminServer, type ServerSource, sharedAdminServer, startAdminServer } from './source.js';
export { createStandbyPair, type StandbyPair } from './standby-pair.js';
export { type ProxyMode, TcpProxy } from './tcp-proxy.js';
export { createTestCertificates, type TestCertificateOptions, type TestCertificates } from './test-certificates.js';
export { type ConnectionFields, createTestDatabase, type TestDatabase } from './test-database.js';
export { testPoolConfig } from './test-pool.js';
export { backendState, type RunStatement, waitFor } from './wait-for.js';
