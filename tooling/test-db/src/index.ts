export { PostgresServer, type PostgresServerOptions, freePort, resolvePgBinDir } from './postgres-server.js';
export { type AdminServer, type ServerSource, sharedAdminServer, startAdminServer } from './source.js';
export { type ConnectionFields, type TestDatabase, createTestDatabase } from './test-database.js';
export { type ProxyMode, TcpProxy } from './tcp-proxy.js';
