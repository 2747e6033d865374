/**
 * Every use of `pg` beyond its typed surface, in one place: the cancel key, the query queue, the socket,
 * ReadyForQuery, protocol events, and what a batch needs to fill pg's own Result objects. Checked
 * against pg 8.23; a pg upgrade is reviewed here and nowhere else.
 */
import type { Socket } from 'node:net';
import pg from 'pg';
import type { HostPort } from './config.js';
import { ConnectionLostError } from './database-errors.js';

/** The driver's client. Hooks receive it; leases expose it for driver-level features (COPY, LISTEN). */
export type PgClient = pg.Client;

/** The key pg keeps from the server's BackendKeyData (protocol 3.0: a 32-bit secret). */
export function cancelKeyOf(client: PgClient): { processId: number; secretKey: number } {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  return { processId: processID, secretKey };
}

/** Whether pg upgraded this connection to TLS (its socket is then a TLSSocket). */
export function isEncrypted(client: PgClient): boolean {
  return (connectionOf(client).stream as Socket & { encrypted?: boolean }).encrypted === true;
}

/** Whether `query` (a Submittable) is still queued on `client` or is the query it runs (pg clears it at ErrorResponse or ReadyForQuery). */
export function isPending(client: PgClient, query: unknown): boolean {
  const c = client as unknown as { _activeQuery: unknown; _queryQueue: unknown[] };
  return c._activeQuery === query || c._queryQueue.includes(query);
}

/**
 * Whether a Submittable other than pg's own Query (a cursor or stream handed to `client.query`
 * directly) is running or queued on `client`. A failed pg Query stays active until ReadyForQuery and
 * does not count: the connection is fine once that arrives.
 */
export function hasOpenCursor(client: PgClient): boolean {
  const c = client as unknown as { _activeQuery: unknown; _queryQueue: unknown[] };
  const isCursor = (q: unknown) => q !== null && q !== undefined && !(q instanceof pg.Query);
  return isCursor(c._activeQuery) || c._queryQueue.some(isCursor);
}

/** pg's own flag: false while a query runs or a ReadyForQuery is still due. */
export function isReadyForQuery(client: PgClient): boolean {
  return (client as unknown as { readyForQuery?: boolean }).readyForQuery !== false;
}

/** pg's connection object: the socket it reads and the protocol messages it emits, one event each. */
interface PgConnectionInternals {
  stream: Socket;
  on(event: 'portalSuspended' | 'copyInResponse', listener: () => void): void;
}

function connectionOf(client: PgClient): PgConnectionInternals {
  return (client as unknown as { connection: PgConnectionInternals }).connection;
}

/**
 * Close `client`'s socket when the server sends nothing for the bound while a request waits on it:
 * TCP alone notices a silent peer only after minutes (retransmissions) or hours (keepalive). Uses the
 * socket's own inactivity timer, which Node re-arms on every read and write, so a query pays nothing.
 * Silence is ignored when it is our turn: the connection is idle (ReadyForQuery), a portal is suspended
 * waiting for the next fetch, or the server waits for COPY data. The socket is destroyed with a
 * {@link ConnectionLostError}, which pg hands to the waiting query as its error. Returns the setter of
 * the bound (0 = off).
 */
export function watchSilence(client: PgClient, host: HostPort): (ms: number) => void {
  const connection = connectionOf(client);
  const socket = connection.stream;
  let bound = 0;
  // bytesWritten when the server last handed the turn to us; unchanged since → we are the silent side.
  let ourTurnAt = -1;
  const ourTurn = () => {
    ourTurnAt = socket.bytesWritten;
  };
  connection.on('portalSuspended', ourTurn);
  connection.on('copyInResponse', ourTurn);
  socket.on('timeout', () => {
    if (bound === 0 || socket.destroyed || isReadyForQuery(client) || socket.bytesWritten === ourTurnAt) return;
    socket.destroy(new ConnectionLostError({ reason: 'timeout', timeoutMs: bound, host: host.host, port: host.port }));
  });
  return (ms) => {
    bound = ms;
    socket.setTimeout(ms);
  };
}

/**
 * End a client politely (Terminate), and close its socket outright if that does not finish within
 * `ms`: on a silent network the polite close never completes and would hold the socket open.
 */
export function endClient(client: PgClient, ms: number): Promise<void> {
  const socket = connectionOf(client).stream as Socket | undefined;
  const timer = setTimeout(() => socket?.destroy(), ms);
  timer.unref();
  return client
    .end()
    .catch(() => {})
    .finally(() => clearTimeout(timer));
}

/** What pg's Result does beyond its typed surface (parseRow/addRow are how pg.Query fills it). */
export interface FillableResult extends pg.QueryResult {
  addFields(fields: unknown[]): void;
  addCommandComplete(msg: unknown): void;
  parseRow(fields: unknown[]): pg.QueryResultRow;
  addRow(row: pg.QueryResultRow): void;
}

/** pg's own value serialisation (Dates, arrays, JSON, `toPostgres`), exactly as `client.query` applies it. */
export const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

const Result = pg.Result as unknown as new (rowMode?: string, types?: unknown) => FillableResult;

/** A pg Result to fill row by row, with the caller's rowMode and type parsers. */
export function newResult(rowMode: string | undefined, types: unknown): FillableResult {
  return new Result(rowMode, types);
}

/** One socket write for a whole encoded flight (pg's Connection writes each message on its own). */
export function writeFlight(connection: pg.Connection, flight: Buffer): void {
  const stream = (connection as unknown as { stream: { writable?: boolean; write(chunk: Buffer): boolean } }).stream;
  if (stream.writable !== false) stream.write(flight);
}

/** Refuse a COPY FROM STDIN the server started: CopyFail, so the statement fails and the connection stays usable. */
export function failCopyIn(connection: pg.Connection, message: string): void {
  (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail(message);
}

/** Run `then` once the server's next ReadyForQuery has been handled by pg (it listens first), or the connection ended. */
export function afterReadyForQuery(connection: pg.Connection, then: () => void): void {
  const events = connection as unknown as NodeJS.EventEmitter;
  const done = () => {
    events.off('readyForQuery', done);
    events.off('end', done);
    then();
  };
  events.on('readyForQuery', done);
  events.on('end', done);
}

/**
 * Call `then` at the server's next ParseComplete on `connection`; returns the function that stops
 * listening. With `client` and `query`, only at a ParseComplete answering `query` (pg's active query
 * then): on a pipelined connection earlier queries' ParseCompletes arrive first.
 */
export function onParseComplete(connection: pg.Connection, then: () => void, client?: PgClient, query?: unknown): () => void {
  const events = connection as unknown as NodeJS.EventEmitter;
  if (client === undefined) {
    events.once('parseComplete', then);
    return () => events.off('parseComplete', then);
  }
  const listener = () => {
    if ((client as unknown as { _activeQuery: unknown })._activeQuery !== query) return;
    events.off('parseComplete', listener);
    then();
  };
  events.on('parseComplete', listener);
  return () => events.off('parseComplete', listener);
}

/** pg's pipeline machinery (pg 8.23): queries are written at once and answered in order of their ReadyForQuery. */
interface PgPipelineInternals {
  pipeline: boolean;
  _queryable: boolean;
  _ending: boolean;
  _queryQueue: unknown[];
  _pulseQueryQueue(): void;
}

/**
 * Switch pg's pipeline mode on `client` (the pipeline does so on the connections it holds, and off
 * before it gives one back, with nothing in flight). In pipeline mode pg writes every query at once
 * and hands the server's messages to each in turn, one ReadyForQuery apiece.
 */
export function setPipelineMode(client: PgClient, on: boolean): void {
  (client as unknown as PgPipelineInternals).pipeline = on;
}

/**
 * Hand `query` to `client` as `client.query(query)` does. In pipeline mode a Submittable of ours (a
 * statement-cache query, a single round trip ending in Sync) goes onto pg's queue directly: pg's
 * `query()` refuses every custom Submittable there, since a cursor's portal would span other queries.
 */
export function enqueue(client: PgClient, query: pg.Submittable): void {
  const c = client as unknown as PgPipelineInternals;
  if (!c.pipeline || !c._queryable || c._ending) {
    client.query(query);
    return;
  }
  c._queryQueue.push(query);
  c._pulseQueryQueue();
}

/** Whether pg's pipeline mode is on for `client` (see {@link setPipelineMode}). */
export function isPipelined(client: PgClient): boolean {
  return (client as unknown as PgPipelineInternals).pipeline === true;
}
