import type pg from 'pg';
import { PostgresServer, type PostgresServerOptions, type StandbyOptions } from './postgres-server.js';
import { waitFor } from './wait-for.js';

/** A primary and its streaming standby, each with a superuser client, for replication tests. */
export interface StandbyPair {
  readonly primary: PostgresServer;
  readonly standby: PostgresServer;
  /** Superuser client on the primary's `postgres` database. */
  readonly onPrimary: pg.Client;
  /** Superuser client on the standby's `postgres` database (read-only: it is in recovery). */
  readonly onStandby: pg.Client;
  /** Commit a row in table `t` on the primary and wait (up to a minute) until the standby has replayed it. */
  writeAndReplay(): Promise<void>;
  /** Close the clients, then destroy the standby and the primary. */
  destroy(): Promise<void>;
}

/**
 * Start a primary (`primary` options; `binDir` must have pg_basebackup, see `hasBaseBackup`), a
 * standby streaming from it (`standby` options), a client on each, and table
 * `t (id int identity primary key)` on the primary, replayed on the standby. Whatever started is stopped if a later step fails.
 */
export async function createStandbyPair(
  options: { primary?: PostgresServerOptions; standby?: StandbyOptions } = {},
): Promise<StandbyPair> {
  const servers: PostgresServer[] = [];
  const clients: pg.Client[] = [];
  const destroy = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    for (const server of servers.reverse()) await server.destroy();
  };
  try {
    const primary = await PostgresServer.create(options.primary);
    servers.push(primary);
    const standby = await PostgresServer.createStandby(primary, options.standby);
    servers.push(standby);
    const onPrimary = await primary.connect();
    clients.push(onPrimary);
    const onStandby = await standby.connect();
    clients.push(onStandby);
    await onPrimary.query('create table t (id int generated always as identity primary key)');
    // Ready once the standby has replayed the table too, so reading t there never fails.
    await waitFor(
      async () => (await onStandby.query("select to_regclass('public.t') is not null as ok")).rows[0]?.ok === true,
      60_000,
    );
    const writeAndReplay = async () => {
      const { rows } = await onPrimary.query<{ id: number }>('insert into t default values returning id');
      const id = rows[0]?.id;
      await waitFor(async () => (await onStandby.query('select 1 from t where id = $1', [id])).rowCount === 1, 60_000);
    };
    return { primary, standby, onPrimary, onStandby, writeAndReplay, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}
