import type { PoolConnection } from '@accountdb/pool';
import { describe, expectTypeOf, test } from 'vitest';
import { type Database, execute, executeInTransaction, type SqlFragment, sql, stream, transaction } from '../src/index.js';

// Type-level checks of the public API, enforced by `tsc -p .` (`pnpm typecheck`); the bodies never run.
declare const db: Database;
declare const fragment: SqlFragment;
type User = { id: number; email: string };

describe('public API types', () => {
  test('execute return type follows fetch', () => {
    if (Math.random() > 2) {
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
    }
  });
});
