export type { TransactionStatus } from '@accountdb/pool';
export {
  assertSafeLoginRole,
  type ContextSettings,
  checkRlsEnabled,
  getUserConnectionInfo,
  type TableRlsStatus,
  type UserConnectionInfo,
} from './catalog.js';
export { RlsContextError, RlsScopeClosedError, RlsScopeError, type RlsScopeFailure, UnsafeLoginRoleError } from './errors.js';
export {
  type KyselyCompiledQuery,
  type KyselyDatabaseConnection,
  type KyselyDialect,
  type KyselyDriver,
  type KyselyQueryResult,
  type RlsKyselyDialectOptions,
  rlsKyselyDialect,
} from './kysely.js';
export type { RlsOptions, ScopeOptions, UserContext, UserIdKind, UserIdValidator } from './options.js';
export { type ConnectionSource, type CreateRlsOptions, createRls, Rls } from './rls.js';
export {
  type AccessorFunctionsOptions,
  accessorFunctionsSql,
  type UserIdSqlType,
  type UserOwnedPolicyOptions,
  userOwnedPolicySql,
} from './sql.js';
export type { RlsTransaction } from './transaction.js';
