/**
 * `@accountdb/pool/pg`: a `pg.Pool`-compatible face of the pool, the migration path from `pg.Pool` and
 * the way in for Kysely, Drizzle and Prisma (`@prisma/adapter-pg`). See docs/migrating-from-pg-pool.md.
 */
export { NestedTransactionError } from './errors.js';
export {
  type CreatePgPoolOptions,
  createPgPool,
  PgPool,
  type PgPoolClient,
  type PgPoolSource,
  toPgError,
  transactionControl,
} from './pg-pool.js';
