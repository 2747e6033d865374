import pg from 'pg';
import { describeTarget, type HostPort, type PoolConfig } from './config.js';
import { endClient, type PgClient, watchSilence } from './driver.js';
import { DatabaseUnavailableError, describeCause } from './errors.js';
import { explainTlsFailure, tlsOptions } from './tls.js';

/** A new session on an acceptable host, not yet part of any pool. */
export interface OpenedClient {
  readonly client: PgClient;
  readonly host: HostPort;
  /** Sets the silence bound on the socket (`watchSilence`); it starts at the connect timeout. */
  readonly boundSilence: (ms: number) => void;
}

/**
 * THE translation of a resolved configuration into pg's client options, for one host: every pg
 * client in the toolkit is built from this (the pool's sessions, tools that need a session of their
 * own). `ssl` is `false` or the TLS options from `tlsOptions(config)`.
 */
export function toClientConfig(config: PoolConfig, host: HostPort, ssl: pg.ClientConfig['ssl']): pg.ClientConfig {
  return {
    host: host.host,
    port: host.port,
    user: config.user,
    password: config.password,
    database: config.database,
    ssl,
    keepAlive: config.keepAlive,
    keepAliveInitialDelayMillis: config.keepAliveIdleMs,
    connectionTimeoutMillis: config.connectionTimeoutMs,
    ...(config.applicationName !== undefined ? { application_name: config.applicationName } : {}),
    ...(config.statementTimeoutMs !== undefined ? { statement_timeout: config.statementTimeoutMs } : {}),
  };
}

/**
 * Opens sessions (HikariCP's PoolBase, postgres.js's connection): multi-host failover with libpq's
 * `target_session_attrs`, TLS with sslmode `prefer`'s fallback to plain TCP, the connect timeout.
 */
export class Connector {
  readonly #config: PoolConfig;
  /** Hosts that answered sslmode `prefer`'s SSLRequest with "no": plain TCP from then on. */
  readonly #noSsl = new Set<string>();
  readonly #onAttemptFailed: () => void;

  /** `onAttemptFailed` runs once per host that could not be connected to. */
  constructor(config: PoolConfig, onAttemptFailed: () => void) {
    this.#config = config;
    this.#onAttemptFailed = onAttemptFailed;
  }

  /**
   * A session on the first acceptable host, in order (libpq `target_session_attrs`; `prefer-standby`
   * makes a second pass accepting any). Throws {@link DatabaseUnavailableError} with the last failure.
   */
  async open(): Promise<OpenedClient> {
    const { hosts, targetSessionAttrs, connectionTimeoutMs } = this.#config;
    const passes = targetSessionAttrs === 'prefer-standby' ? (['standby', 'any'] as const) : ([targetSessionAttrs] as const);
    let lastError: unknown;
    let lastHost = hosts[0] as HostPort;
    for (const want of passes) {
      for (const host of hosts) {
        lastHost = host;
        let client: PgClient;
        let boundSilence: (ms: number) => void;
        try {
          client = await this.#connect(host);
          // Until the connection is handed out, a silent server gets the connect timeout, not the query bound.
          boundSilence = watchSilence(client, host);
          boundSilence(connectionTimeoutMs);
        } catch (err) {
          this.#onAttemptFailed();
          lastError = err;
          continue;
        }
        if (want !== 'any') {
          let accepted = false;
          try {
            accepted = await hostAccepts(client, want);
            lastError = new Error(`server is not ${want}`);
          } catch (err) {
            lastError = err;
          }
          if (!accepted) {
            await endClient(client, connectionTimeoutMs);
            continue;
          }
        }
        return { client, host, boundSilence };
      }
    }
    throw new DatabaseUnavailableError(lastHost.host, lastHost.port, lastError, describeTarget(this.#config));
  }

  async #connect(host: HostPort): Promise<PgClient> {
    const mode = this.#config.sslmode;
    const key = `${host.host}:${host.port}`;
    const tryTls =
      mode === 'require' || mode === 'verify-ca' || mode === 'verify-full' || (mode === 'prefer' && !this.#noSsl.has(key));
    if (!tryTls) return this.#connectOnce(host, false);
    try {
      return await this.#connectOnce(host, true);
    } catch (err) {
      // libpq `prefer`: fall back to plain TCP when the server has no TLS, and remember that.
      if (mode === 'prefer' && /does not support SSL/i.test(describeCause(err))) {
        this.#noSsl.add(key);
        return this.#connectOnce(host, false);
      }
      throw err;
    }
  }

  async #connectOnce(host: HostPort, tls: boolean): Promise<PgClient> {
    const c = this.#config;
    const client = new pg.Client(toClientConfig(c, host, tls ? await tlsOptions(c) : false));
    // Until adopted, errors surface through connect()'s rejection; swallow the duplicate event.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (err) {
      // Not awaited: after a TLS alert from the server (say, our client certificate refused) pg's end()
      // can stay pending, and this connect would hang until the acquire timeout; endClient closes the
      // socket outright if it does.
      void endClient(client, c.connectionTimeoutMs);
      throw explainTlsFailure(err, c);
    }
    return client;
  }
}

async function hostAccepts(client: PgClient, want: string): Promise<boolean> {
  const { rows } = await client.query<{ standby: boolean; ro: boolean }>(
    "select pg_is_in_recovery() as standby, current_setting('transaction_read_only') = 'on' as ro",
  );
  const row = rows[0];
  if (!row) return false;
  switch (want) {
    case 'read-write':
      return !row.ro;
    case 'read-only':
      return row.ro;
    case 'primary':
      return !row.standby;
    case 'standby':
      return row.standby;
    default:
      return true;
  }
}
