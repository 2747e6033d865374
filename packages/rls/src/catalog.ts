import type { PgClient, Queryable, TransactionStatus } from '@accountdb/pool';
import { RlsContextError, UnsafeLoginRoleError } from './errors.js';
import { DEFAULT_SETTINGS } from './options.js';
import type { RlsTransaction } from './transaction.js';

/** Row-Level Security state of one table, as {@link checkRlsEnabled} reports it. */
export interface TableRlsStatus {
  /** The name as given. */
  readonly table: string;
  readonly exists: boolean;
  /** `ALTER TABLE … ENABLE ROW LEVEL SECURITY`. */
  readonly rlsEnabled: boolean;
  /** `ALTER TABLE … FORCE ROW LEVEL SECURITY`: the owner is subject to policies too. */
  readonly rlsForced: boolean;
}

/**
 * Per table (names resolved like `regclass`, optionally schema-qualified): does it exist, is RLS
 * enabled, is it forced. One query however many tables (the seed's `check_rls_enabled`, which only
 * said yes or no). Throws {@link RlsContextError} for a malformed list before any SQL.
 */
export async function checkRlsEnabled(db: Queryable, tables: readonly string[]): Promise<TableRlsStatus[]> {
  if (!Array.isArray(tables) || tables.length === 0)
    throw new RlsContextError('tables', 'must be a non-empty array of table names');
  for (const t of tables)
    if (typeof t !== 'string' || t.trim() === '' || t.includes('\0') || t.length > 300)
      throw new RlsContextError('tables', 'must contain table names (non-empty strings without NUL, at most 300 characters)');
  const { rows } = await db.query<{ exists: boolean; enabled: boolean | null; forced: boolean | null }>(
    `select c.oid is not null as exists, c.relrowsecurity as enabled, c.relforcerowsecurity as forced
       from unnest($1::text[]) with ordinality as t(name, i)
       left join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(t.name)
      order by t.i`,
    [tables],
  );
  return tables.map((table, i) => {
    const row = rows[i];
    return { table, exists: row?.exists === true, rlsEnabled: row?.enabled === true, rlsForced: row?.forced === true };
  });
}

/**
 * Throw {@link UnsafeLoginRoleError} when the connection's roles can read past RLS: the session or
 * current role is a superuser or has BYPASSRLS, can SET ROLE to one that is, or owns (directly or
 * by inheritance) a table with RLS enabled but not FORCEd. Run it at start-up, as the app role.
 */
export async function assertSafeLoginRole(db: Queryable): Promise<void> {
  const { rows: roles } = await db.query<{ name: string; login: boolean; super: boolean; bypass: boolean }>(
    `select r.rolname as name, r.rolname = session_user as login, r.rolsuper as super, r.rolbypassrls as bypass
       from pg_catalog.pg_roles r
      where r.rolname in (session_user, current_user)
         or ((r.rolsuper or r.rolbypassrls) and pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))`,
  );
  const { rows: tables } = await db.query<{ name: string; owner: string }>(
    `select pg_catalog.format('%I.%I', n.nspname, c.relname) as name, pg_catalog.pg_get_userbyid(c.relowner) as owner
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and c.relrowsecurity and not c.relforcerowsecurity
        and pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE')
      order by 1`,
  );
  const login = roles.find((r) => r.login)?.name ?? '(unknown)';
  const problems: string[] = [];
  for (const r of roles) {
    const who = r.login ? 'is' : `can act as ${JSON.stringify(r.name)}, which is`;
    if (r.super) problems.push(`${who} a superuser (superusers always bypass RLS)`);
    else if (r.bypass) problems.push(`${who} BYPASSRLS`);
  }
  for (const t of tables.slice(0, 50))
    problems.push(
      `owns ${t.name} (through ${JSON.stringify(t.owner)}), which has RLS enabled but not FORCEd: the owner sees every row`,
    );
  if (tables.length > 50) problems.push(`… and ${tables.length - 50} more such tables`);
  if (problems.length > 0) throw new UnsafeLoginRoleError(login, problems);
}

/** What {@link getUserConnectionInfo} reports (the seed's `get_user_connection_info`). */
export interface UserConnectionInfo {
  /** The user-id setting as the server sees it now; `null` when unset or empty. */
  readonly userId: string | null;
  /** The role setting; `null` when unset or empty. */
  readonly role: string | null;
  readonly currentUser: string;
  readonly sessionUser: string;
  readonly backendPid: number;
  /** `I` idle, `T` in a transaction, `E` in a failed one; `null` when `conn` cannot tell (e.g. a pool). */
  readonly transactionStatus: TransactionStatus | null;
}

/** Which settings to read; an {@link Rls} instance fits. Defaults: `app.current_user_id`, `app.current_user_role`. */
export interface ContextSettings {
  readonly userIdSetting: string;
  readonly roleSetting: string;
}

/** A lease, a scope's `tx`, or a `pg.Client`; a pool works too but cannot report a transaction state. */
type InfoTarget = Queryable & {
  client?: PgClient;
  transactionStatus?: RlsTransaction['transactionStatus'];
  getTransactionStatus?: PgClient['getTransactionStatus'];
};

/** The context settings, current and session user, backend pid and transaction state of `conn`. */
export async function getUserConnectionInfo(
  conn: InfoTarget,
  settings: ContextSettings = DEFAULT_SETTINGS,
): Promise<UserConnectionInfo> {
  const { rows } = await conn.query<{ user_id: string | null; role: string | null; cu: string; su: string; pid: number }>(
    `select nullif(pg_catalog.current_setting($1, true), '') as user_id, nullif(pg_catalog.current_setting($2, true), '') as role,
            current_user as cu, session_user as su, pg_catalog.pg_backend_pid() as pid`,
    [settings.userIdSetting, settings.roleSetting],
  );
  const row = rows[0];
  if (!row) throw new RlsContextError('conn', 'returned no row for the connection info query');
  const status =
    typeof conn.transactionStatus === 'function'
      ? conn.transactionStatus()
      : typeof conn.getTransactionStatus === 'function'
        ? conn.getTransactionStatus()
        : (conn.client?.getTransactionStatus() ?? null);
  return {
    userId: row.user_id,
    role: row.role,
    currentUser: row.cu,
    sessionUser: row.su,
    backendPid: row.pid,
    transactionStatus: status,
  };
}
