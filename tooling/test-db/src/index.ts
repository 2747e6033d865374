export { PgBouncer, type PgBouncerOptions, type PgBouncerUser, resolvePgBouncerBinary } from './pgbouncer.js';
export { freePort, PostgresServer, type PostgresServerOptions, resolvePgBinDir } from './postgres-server.js';
export { type AdminServer, type ServerSource, sharedAdminServer, startAdminServer } from './source.js';
export { type ProxyMode, TcpProxy } from './tcp-proxy.js';
export { type ConnectionFields, createTestDatabase, type TestDatabase } from './test-database.js';
