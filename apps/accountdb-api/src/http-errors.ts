import {
  AccountDbError,
  CheckViolationError,
  ConnectionLostError,
  DatabaseUnavailableError,
  DataExceptionError,
  DeadlockDetectedError,
  ForeignKeyViolationError,
  InsufficientPrivilegeError,
  NotNullViolationError,
  PoolClosedError,
  PoolTimeoutError,
  SerializationFailureError,
  StatementTimeoutError,
  UniqueViolationError,
} from '@accountdb/pool';
import { RlsContextError } from '@accountdb/rls';
import type { FastifyError, FastifyInstance } from 'fastify';

/** An error a route raises on purpose, with its HTTP status and a stable `code`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** What every error response looks like. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
}

/** An HTTP answer for an error: status, body, and `Retry-After` seconds for the transient ones. */
export interface HttpErrorMapping {
  status: number;
  body: ErrorBody;
  retryAfterSeconds?: number;
}

/** Seconds a client should wait before retrying when the pool is exhausted or the database is away. */
export const RETRY_AFTER_BUSY_SECONDS = 1;
export const RETRY_AFTER_UNAVAILABLE_SECONDS = 5;

const answer = (status: number, code: string, message: string, retryAfterSeconds?: number): HttpErrorMapping => ({
  status,
  body: { statusCode: status, code, message },
  ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
});

/**
 * The one place errors become HTTP. Messages of database errors are our own words (the tables'
 * constraint names at most), never the server's DETAIL, which can quote row values.
 */
export function toHttpError(err: unknown): HttpErrorMapping {
  if (err instanceof HttpError) return answer(err.statusCode, err.code, err.message);
  const fastify = err as Partial<FastifyError>;
  if (fastify.validation) return answer(400, 'VALIDATION_FAILED', fastify.message ?? 'invalid request');
  // Fastify's own client errors (bad JSON, unsupported media type, body too large, ...).
  if (
    typeof fastify.statusCode === 'number' &&
    fastify.statusCode >= 400 &&
    fastify.statusCode < 500 &&
    !AccountDbError.is(err)
  ) {
    return answer(fastify.statusCode, fastify.code ?? 'BAD_REQUEST', fastify.message ?? 'bad request');
  }
  for (const e of causes(err)) {
    if (e instanceof PoolTimeoutError || e instanceof SerializationFailureError || e instanceof DeadlockDetectedError) {
      return answer(503, e.code, 'the database is busy; retry shortly', RETRY_AFTER_BUSY_SECONDS);
    }
    if (e instanceof DatabaseUnavailableError || e instanceof ConnectionLostError || e instanceof PoolClosedError) {
      return answer(503, e.code, 'the database is unavailable; retry later', RETRY_AFTER_UNAVAILABLE_SECONDS);
    }
    if (e instanceof StatementTimeoutError)
      return answer(503, e.code, 'the query took too long; retry later', RETRY_AFTER_BUSY_SECONDS);
  }
  if (err instanceof UniqueViolationError) {
    return answer(409, 'CONFLICT', `already exists (${err.constraint ?? 'unique constraint'})`);
  }
  if (err instanceof ForeignKeyViolationError) {
    return answer(409, 'CONFLICT', 'refers to a row that does not exist or is not yours');
  }
  // A policy's WITH CHECK refused the row (42501: "new row violates row-level security policy").
  if (err instanceof InsufficientPrivilegeError) return answer(403, 'FORBIDDEN', 'not allowed for this user');
  if (err instanceof CheckViolationError || err instanceof NotNullViolationError || err instanceof DataExceptionError) {
    return answer(400, 'VALIDATION_FAILED', `rejected by the database (${(err as CheckViolationError).constraint ?? err.code})`);
  }
  if (err instanceof RlsContextError) return answer(401, 'UNAUTHORIZED', 'token claims are not usable');
  return answer(500, 'INTERNAL', 'internal error');
}

function* causes(err: unknown): Generator<unknown> {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/** Install {@link toHttpError} as the app's error handler (and a JSON 404 for unknown routes). */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const mapped = toHttpError(err);
    // A 503 is the database's state, not a bug: warn, with the code only (the pool's message is in its own logs).
    if (mapped.status === 503) request.log.warn({ code: mapped.body.code }, 'request refused: database busy or unavailable');
    else if (mapped.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: mapped.body.code, status: mapped.status }, 'request refused');
    if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
    return reply.code(mapped.status).send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ statusCode: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
}
