/**
 * Type-level tests of the public API. Not a vitest file: `tsc -p .` (`pnpm typecheck`) checks it, and
 * a wrong return type or a missing `@ts-expect-error` fails the typecheck. Nothing here runs.
 */
import type { Pool, PoolConnection, TransactionScope } from '@accountdb/pool';
import { expectTypeOf } from 'vitest';
import { type Database, execute, executeInTransaction, type SqlFragment, sql, stream, transaction } from '../src/index.js';

type User = { id: number; email: string };

export function publicApiTypes(db: Database, fragment: SqlFragment): void {
  expectTypeOf(execute<User>(db, 'select', [1])).toEqualTypeOf<Promise<User[]>>();
  expectTypeOf(execute<User>(db, 'select', [1], { fetch: 'one' })).toEqualTypeOf<Promise<User | undefined>>();
  expectTypeOf(execute(db, 'update', [], { fetch: 'none' })).toEqualTypeOf<Promise<number>>();
  expectTypeOf(execute<User>(db, fragment, { fetch: 'one' })).toEqualTypeOf<Promise<User | undefined>>();
  expectTypeOf(execute<User>(db, sql`select`, { fetch: 'many', count: 2 })).toEqualTypeOf<Promise<User[]>>();
  expectTypeOf(executeInTransaction<User>(db, 'select', [], { fetch: 'one', isolation: 'serializable' })).toEqualTypeOf<
    Promise<User | undefined>
  >();
  expectTypeOf(stream<User>(db, 'select')).toEqualTypeOf<AsyncIterable<User>>();
  expectTypeOf(transaction(db, async (tx) => (tx satisfies PoolConnection | TransactionScope) && 1)).toEqualTypeOf<
    Promise<number>
  >();
  // @ts-expect-error options cannot follow a string query directly (they would be read as params)
  execute(db, 'select', { fetch: 'one' });
  // @ts-expect-error unknown fetch mode
  execute(db, 'select', [], { fetch: 'some' });
  // @ts-expect-error isolation levels are a closed set
  transaction(db, async () => {}, { isolation: 'snapshot' });
}

/** Shaped like `@accountdb/rls`'s `RlsTransaction` (query may not import rls): a scope with extras. */
interface UserScope extends TransactionScope {
  readonly userId: string;
}

export function scopeTypes(pool: Pool, lease: PoolConnection, tx: UserScope): void {
  expectTypeOf(transaction(pool, async (t) => t)).toEqualTypeOf<Promise<PoolConnection>>();
  expectTypeOf(transaction(lease, async (t) => t)).toEqualTypeOf<Promise<PoolConnection>>();
  // Inside a scope the savepoint's callback gets the scope itself, with its own type.
  expectTypeOf(transaction(tx, async (t) => t.userId)).toEqualTypeOf<Promise<string>>();
  expectTypeOf(execute<User>(tx, 'select', [1])).toEqualTypeOf<Promise<User[]>>();
  expectTypeOf(execute<User>(tx, sql`select`, { fetch: 'one', timeoutMs: 100 })).toEqualTypeOf<Promise<User | undefined>>();
  expectTypeOf(execute(tx, 'delete', [], { fetch: 'none' })).toEqualTypeOf<Promise<number>>();
  expectTypeOf(executeInTransaction<User>(tx, 'select', [], { fetch: 'many', count: 2 })).toEqualTypeOf<Promise<User[]>>();
  expectTypeOf(stream<User>(tx, 'select', [], { batchSize: 10 })).toEqualTypeOf<AsyncIterable<User>>();
  expectTypeOf(tx).toMatchTypeOf<Database>();
  // @ts-expect-error a bare query function is not a Database: nothing to lend a connection for cursors or cancel
  execute({ query: tx.query }, 'select');
}
