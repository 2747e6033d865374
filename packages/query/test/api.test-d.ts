/**
 * Type-level tests of the public API. Not a vitest file: `tsc -p .` (`pnpm typecheck`) checks it, and
 * a wrong return type or a missing `@ts-expect-error` fails the typecheck. Nothing here runs.
 */
import type { PoolConnection } from '@accountdb/pool';
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
  expectTypeOf(transaction(db, async (tx) => (tx satisfies PoolConnection) && 1)).toEqualTypeOf<Promise<number>>();
  // @ts-expect-error options cannot follow a string query directly (they would be read as params)
  execute(db, 'select', { fetch: 'one' });
  // @ts-expect-error unknown fetch mode
  execute(db, 'select', [], { fetch: 'some' });
  // @ts-expect-error isolation levels are a closed set
  transaction(db, async () => {}, { isolation: 'snapshot' });
}
