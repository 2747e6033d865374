import { AccountDbError } from '@accountdb/pool';

/** An argument was rejected before any SQL ran (bad fetch mode, count, timeout, params). */
export class QueryArgumentError extends AccountDbError {
  declare readonly code: 'INVALID_ARGUMENT';

  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** A table, schema or column name cannot be a PostgreSQL identifier. Thrown before any SQL runs. */
export class InvalidIdentifierError extends AccountDbError {
  declare readonly code: 'INVALID_IDENTIFIER';

  constructor(reason: string) {
    super('INVALID_IDENTIFIER', `Invalid identifier: ${reason}`);
  }
}
