import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { describeTarget, type HostPort, type PoolConfig, type TargetSessionAttrs } from './config.js';
import { endClient, type PgClient, watchSilence } from './driver.js';
import { DatabaseUnavailableError, describeCause } from './errors.js';
import { isTransientConnectionError } from './retry.js';
import type { DestroyReason } from './stats.js';
import { withTimeout } from './timers.js';
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

/** What a server said about itself in the check after connect (or at validation). */
interface ServerRole {
  readonly standby: boolean;
  readonly readOnly: boolean;
  /** Replay lag of a standby, ms (0 when it has replayed all it received); null when unknown or a primary. */
  readonly lagMs: number | null;
}

/** What the connector knows about one host, shared by every connect of one pool. */
interface HostState {
  /** performance.now() until which new connects skip this host (it could not be reached); 0 = up. */
  downUntil: number;
  /** A connect is probing this host while it is known down: other connects skip it meanwhile. */
  probing: boolean;
  /** Its role did not suit this pool's target at the last connect: one connect at a time checks it again. */
  unsuitable: boolean;
  /** Why the last connect to it failed or was refused: what a connect that skipped it reports. */
  lastError: unknown;
  /** performance.now() until which standby-seeking connects skip this host (its replay lagged); 0 = not lagging. */
  laggingUntil: number;
  /** performance.now() of the last lag check of this host, by a connect or a hand-out. */
  lagCheckedAt: number;
  /** The role last seen on this host, and when. */
  role: 'primary' | 'standby' | undefined;
  roleSeenAt: number;
}

/** A session opened on one host, with what its check said (undefined when this pool checks nothing). */
interface Attempted {
  readonly opened: OpenedClient;
  readonly role: ServerRole | undefined;
}

/** Where a pooled session landed: kept per client, consulted at validation. */
interface Landing {
  readonly host: HostPort;
  readonly key: string;
  standby: boolean;
  /** A `prefer-standby` session on a non-standby because no standby was acceptable when it connected. */
  fallback: boolean;
  /** When the session's role was last checked (or it became a fallback). */
  checkedAt: number;
}

// One statement after connect: role, read-only default, and a standby's replay lag. Lag is what the
// standby received but has not replayed yet, timed by the last replayed commit (0 when it is caught up
// with what it received; a standby cut off from its primary keeps serving what it has).
const CHECK_SQL = `select pg_is_in_recovery() as standby,
  current_setting('transaction_read_only') = 'on' as ro,
  case when not pg_is_in_recovery() then null
       when pg_last_wal_receive_lsn() is not null and pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() then 0
       else (extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8
  end as lag_ms`;

const EMPTY_QUERY = ';';

/**
 * Opens sessions (HikariCP's PoolBase, postgres.js's connection): multi-host failover with libpq's
 * `target_session_attrs`, host memory (a host that could not be reached is skipped for `hostRecheckMs`,
 * then probed by one connect at a time), a replication lag limit for standbys, TLS with sslmode
 * `prefer`'s fallback to plain TCP, the connect timeout. It also validates pooled sessions: a session
 * whose server changed role, fell behind, or whose host went down is reported for destruction.
 */
export class Connector {
  readonly #config: PoolConfig;
  /** Hosts that answered sslmode `prefer`'s SSLRequest with "no": plain TCP from then on. */
  readonly #noSsl = new Set<string>();
  readonly #onAttemptFailed: () => void;
  readonly #hosts = new Map<string, HostState>();
  readonly #landings = new WeakMap<PgClient, Landing>();
  /** Whether sessions are checked at all: a target other than `any`, or a lag limit. */
  readonly #checks: boolean;

  /** `onAttemptFailed` runs once per host that could not be connected to. */
  constructor(config: PoolConfig, onAttemptFailed: () => void) {
    this.#config = config;
    this.#onAttemptFailed = onAttemptFailed;
    this.#checks = config.targetSessionAttrs !== 'any' || config.maxReplicationLagMs !== undefined;
  }

  /** Host memory applies only when there is another host to go to. */
  get #remembers(): boolean {
    return this.#config.hosts.length > 1 && this.#config.hostRecheckMs > 0;
  }

  #state(key: string): HostState {
    let state = this.#hosts.get(key);
    if (!state) {
      state = {
        downUntil: 0,
        probing: false,
        unsuitable: false,
        lastError: undefined,
        laggingUntil: 0,
        lagCheckedAt: 0,
        role: undefined,
        roleSeenAt: 0,
      };
      this.#hosts.set(key, state);
    }
    return state;
  }

  /**
   * The hosts this connect tries, in configured order: a host known down keeps its place once its
   * recheck is due, and before that goes after every other host; either way a down host is probed by
   * one connect at a time (`probe`), the others skip it.
   */
  #candidates(now: number): { host: HostPort; probe: boolean }[] {
    const all = this.#config.hosts.map((host) => ({ host, probe: false }));
    if (!this.#remembers) return all;
    const first: { host: HostPort; probe: boolean }[] = [];
    const last: { host: HostPort; probe: boolean }[] = [];
    for (const host of this.#config.hosts) {
      const state = this.#state(keyOf(host));
      if (state.downUntil === 0) first.push({ host, probe: false });
      else (state.downUntil <= now ? first : last).push({ host, probe: true });
    }
    return [...first, ...last];
  }

  /**
   * A session on the first acceptable host, in order (libpq `target_session_attrs`; with
   * `prefer-standby` the first session on any other acceptable server is kept open as the fallback
   * while later hosts are tried for a standby). Throws {@link DatabaseUnavailableError} with the last failure.
   */
  async open(): Promise<OpenedClient> {
    const { targetSessionAttrs, connectionTimeoutMs } = this.#config;
    const candidates = this.#candidates(performance.now());
    let lastError: unknown;
    let lastHost = (candidates[0]?.host ?? this.#config.hosts[0]) as HostPort;
    let fallback: Attempted | undefined;
    for (const { host, probe } of candidates) {
      const key = keyOf(host);
      if (this.#remembers && this.#skipsForLag(key, targetSessionAttrs)) {
        lastError ??= new Error('standby skipped: its replication lag was over maxReplicationLagMs');
        continue;
      }
      const state = this.#remembers ? this.#state(key) : undefined;
      // A host known down, or of the wrong role for this pool last time, is tried by one connect at a
      // time: the others skip it (and report why it was skipped) instead of piling onto it.
      const exclusive = state !== undefined && (probe || state.unsuitable);
      if (exclusive) {
        if (state.probing || (fallback && state.downUntil > performance.now())) {
          lastError ??= state.lastError;
          continue;
        }
        state.probing = true;
      }
      lastHost = host;
      let attempted: Attempted | { error: unknown };
      try {
        attempted = await this.#attempt(host, key, state);
      } finally {
        if (exclusive) state.probing = false;
      }
      if ('error' in attempted) {
        lastError = attempted.error;
        continue;
      }
      const verdict = attempted.role ? this.#judge(attempted.role, targetSessionAttrs) : true;
      if (verdict === true) {
        if (state) state.unsuitable = false;
        if (fallback) await endClient(fallback.opened.client, connectionTimeoutMs);
        return this.#landed(attempted, false);
      }
      lastError = new Error(verdict);
      const role = attempted.role as ServerRole;
      if (targetSessionAttrs === 'prefer-standby') {
        if (!fallback && !role.standby) {
          fallback = attempted;
          continue;
        }
      } else if (state && this.#lagProblem(role) === undefined) {
        state.unsuitable = true;
        state.lastError = lastError;
      }
      await endClient(attempted.opened.client, connectionTimeoutMs);
    }
    if (fallback) return this.#landed(fallback, true);
    lastError ??= new Error('every host is known down or unsuitable, and another connect is checking it');
    throw new DatabaseUnavailableError(lastHost.host, lastHost.port, lastError, describeTarget(this.#config));
  }

  /** Connect to one host and, when this pool checks servers, run the check. Never throws. */
  async #attempt(host: HostPort, key: string, state: HostState | undefined): Promise<Attempted | { error: unknown }> {
    const { connectionTimeoutMs } = this.#config;
    let client: PgClient;
    let boundSilence: (ms: number) => void;
    try {
      client = await this.#connect(host);
      // Until the connection is handed out, a silent server gets the connect timeout, not the query bound.
      boundSilence = watchSilence(client, host);
      boundSilence(connectionTimeoutMs);
      if (state) state.downUntil = 0;
    } catch (error) {
      this.#onAttemptFailed();
      if (state && isHostDown(error)) {
        state.downUntil = performance.now() + this.#config.hostRecheckMs;
        state.lastError = error;
      }
      return { error };
    }
    const opened = { client, host, boundSilence };
    if (!this.#checks) return { opened, role: undefined };
    try {
      return { opened, role: await this.#check(client, key) };
    } catch (error) {
      await endClient(client, connectionTimeoutMs);
      return { error };
    }
  }

  #landed({ opened, role }: Attempted, fallback: boolean): OpenedClient {
    // Kept when something will consult it: a role or lag check, or host memory (hostDown).
    if (role || this.#remembers)
      this.#landings.set(opened.client, {
        host: opened.host,
        key: keyOf(opened.host),
        standby: role?.standby ?? false,
        fallback,
        checkedAt: performance.now(),
      });
    return opened;
  }

  /** True, or why this server is not acceptable for `want`. */
  #judge(role: ServerRole, want: TargetSessionAttrs): true | string {
    return this.#lagProblem(role) ?? roleProblem(role, want) ?? true;
  }

  /** Why a standby is too far behind `maxReplicationLagMs` (unknown lag counts as too far), if it is. */
  #lagProblem(role: ServerRole): string | undefined {
    const limit = this.#config.maxReplicationLagMs;
    if (!role.standby || limit === undefined || (role.lagMs !== null && role.lagMs <= limit)) return undefined;
    return `standby replay lag ${role.lagMs === null ? 'unknown' : `${Math.round(role.lagMs)} ms`} is over maxReplicationLagMs (${limit} ms)`;
  }

  /** A standby that lagged is skipped by connects that look for a standby, until its next check is due. */
  #skipsForLag(key: string, want: TargetSessionAttrs): boolean {
    if (this.#config.maxReplicationLagMs === undefined) return false;
    const state = this.#state(key);
    return state.laggingUntil > performance.now() && want !== 'primary' && want !== 'read-write';
  }

  /** Run the check statement; record role and lag in the host's state. */
  async #check(client: PgClient, key: string): Promise<ServerRole> {
    const ms = this.#config.connectionTimeoutMs;
    const { rows } = await withTimeout(
      client.query<{ standby: boolean; ro: boolean; lag_ms: number | null }>(CHECK_SQL),
      ms,
      () => {
        throw new Error(`server check timed out after ${ms} ms`);
      },
    );
    const row = rows[0];
    if (!row) throw new Error('server check returned no row');
    const role: ServerRole = { standby: row.standby, readOnly: row.ro, lagMs: row.standby ? row.lag_ms : null };
    const state = this.#state(key);
    const now = performance.now();
    state.role = role.standby ? 'standby' : 'primary';
    state.roleSeenAt = now;
    if (role.standby) {
      state.lagCheckedAt = now;
      const limit = this.#config.maxReplicationLagMs;
      const lagging = limit !== undefined && (role.lagMs === null || role.lagMs > limit);
      state.laggingUntil = lagging ? now + this.#lagRecheckMs : 0;
    }
    return role;
  }

  /** How often a standby's lag is re-checked (per host, not per connection). */
  get #lagRecheckMs(): number {
    const { hostRecheckMs, maxReplicationLagMs } = this.#config;
    return Math.max(1, Math.min(hostRecheckMs || Number.POSITIVE_INFINITY, maxReplicationLagMs ?? Number.POSITIVE_INFINITY));
  }

  /**
   * Whether a pooled session must be checked before hand-out even though it was used recently: its
   * host is known down, its standby's lag is due for a check (or was found over the limit), or it is a
   * `prefer-standby` fallback whose recheck is due.
   */
  needsCheck(client: PgClient): boolean {
    if (!this.#checks && !this.#remembers) return false;
    const landing = this.#landings.get(client);
    if (!landing) return false;
    const state = this.#hosts.get(landing.key);
    const now = performance.now();
    if (state && this.#remembers && state.downUntil > 0) return true;
    // Without host memory (one host, or hostRecheckMs 0) a fallback stays, as in libpq: looking again
    // at every hand-out would reconnect every time.
    if (landing.fallback) return this.#remembers && now - landing.checkedAt >= this.#config.hostRecheckMs;
    if (landing.standby && this.#config.maxReplicationLagMs !== undefined && state)
      return state.laggingUntil > now || now - state.lagCheckedAt >= this.#lagRecheckMs;
    return false;
  }

  /**
   * Validate a pooled session (after idle, or when {@link needsCheck} says so). Resolves to the reason
   * to destroy it, or undefined to keep it; rejects when the session does not answer in
   * `connectionTimeoutMs`.
   */
  async validate(client: PgClient): Promise<DestroyReason | undefined> {
    const landing = this.#landings.get(client);
    const ms = this.#config.connectionTimeoutMs;
    const state = landing ? this.#hosts.get(landing.key) : undefined;
    if (state && this.#remembers && state.downUntil > 0) return 'hostDown';
    if (!landing || !this.#checks) {
      await withTimeout(client.query(EMPTY_QUERY), ms, () => {
        throw new Error(`validation timed out after ${ms} ms`);
      });
      return undefined;
    }
    const now = performance.now();
    if (landing.standby) {
      // Claim this host's lag check now, so sessions handed out meanwhile do not all check it too.
      if (state) state.lagCheckedAt = now;
    }
    const role = await this.#check(client, landing.key);
    const want = this.#config.targetSessionAttrs;
    landing.standby = role.standby;
    landing.checkedAt = now;
    if (this.#lagProblem(role)) return 'lag';
    if (roleProblem(role, want) === undefined) {
      landing.fallback = false;
      return undefined;
    }
    if (want === 'prefer-standby' && !role.standby) {
      // A fallback (or a standby since promoted) is kept while no other host could serve as a standby;
      // otherwise it is retired so the next connect looks for one.
      if (landing.fallback && this.#remembers && this.#standbyMayBeElsewhere(landing.key, now)) return 'role';
      landing.fallback = true;
      return undefined;
    }
    return 'role';
  }

  /** Another host is not known down, lagging, or (recently) a primary: a new connect may find a standby there. */
  #standbyMayBeElsewhere(key: string, now: number): boolean {
    const recheck = this.#config.hostRecheckMs;
    return this.#config.hosts.some((host) => {
      const k = keyOf(host);
      if (k === key) return false;
      const state = this.#hosts.get(k);
      if (!state) return true;
      if (state.probing || state.downUntil > now || state.laggingUntil > now) return false;
      return !(state.role === 'primary' && now - state.roleSeenAt < recheck);
    });
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

/** Why a server of this role does not suit `want`, if it does not. */
function roleProblem(role: ServerRole, want: TargetSessionAttrs): string | undefined {
  switch (want) {
    case 'read-write':
      return role.readOnly ? 'server is not read-write' : undefined;
    case 'read-only':
      return role.readOnly ? undefined : 'server is not read-only';
    case 'primary':
      return role.standby ? 'server is not primary' : undefined;
    case 'standby':
    case 'prefer-standby':
      return role.standby ? undefined : 'server is not standby';
    default:
      return undefined;
  }
}

const keyOf = (host: HostPort) => `${host.host}:${host.port}`;

/**
 * A connect failure that says the host itself is unreachable or not taking sessions (refused, reset,
 * timed out, starting up or shutting down): not a login refusal, and not "too many connections",
 * which says the host is up.
 */
function isHostDown(err: unknown): boolean {
  if (!isTransientConnectionError(err)) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && code.startsWith('53'));
}
