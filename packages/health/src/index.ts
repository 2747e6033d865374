export { checkConnectionHealth } from './connection.js';
export { checkDatabaseHealth, DATABASE_HEALTH_SQL } from './database.js';
export type { HealthTarget } from './deadline.js';
export { HEALTH_JSON, type HealthCheckResult, type HealthDocument, type HealthStatus } from './document.js';
export {
  createHealthHandler,
  type HealthHandler,
  type HealthRequest,
  type HealthResponse,
  livenessDocument,
  type ProbeKind,
} from './handler.js';
export { checkHealth } from './health.js';
export type {
  CheckHealthOptions,
  ConnectionHealthOptions,
  DatabaseHealthOptions,
  ExpectedRole,
  HealthHandlerOptions,
  PoolHealthThresholds,
  QueryPerformanceOptions,
  ThresholdInput,
} from './options.js';
export { checkPoolHealth } from './pool-health.js';
export { checkQueryPerformance } from './query-performance.js';
