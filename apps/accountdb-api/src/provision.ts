import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { AccountDbError, type Pool } from '@accountdb/pool';
import { execute, sql, transaction } from '@accountdb/query';

/** The NOLOGIN role holding the application's privileges (granted in `migrations/R__grants.sql`). */
export const APP_GROUP_ROLE = 'accountdb_api_user';

/** Default name of the role the application logs in as. */
export const DEFAULT_LOGIN_ROLE = 'accountdb_api';

/** Provisioning could not create or fix the login role. The message says what to do. */
export class ProvisionError extends AccountDbError {
  declare readonly code: 'PROVISION_FAILED';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('PROVISION_FAILED', message, options);
  }
}

export interface LoginRole {
  readonly name: string;
  /** Non-enumerable: logging this object never shows it. */
  readonly password: string;
}

/**
 * The login role's password when none is configured: derived from the admin password, so every
 * instance started with the same admin credentials agrees on it (a random one per start would lock
 * out the instances already running).
 */
export function derivedLoginPassword(adminPassword: string, role: string): string {
  return createHmac('sha256', adminPassword).update(`accountdb-api login role ${role}`).digest('base64url');
}

/**
 * Create (or bring back in line) the role the application logs in as: LOGIN, NOSUPERUSER,
 * NOBYPASSRLS, NOCREATEDB, NOCREATEROLE, NOINHERIT of nothing but {@link APP_GROUP_ROLE}, whose
 * privileges are the grants of `R__grants.sql`. It owns nothing: the tables belong to the role that
 * runs migrations (`admin`). Runs on the admin pool, in one transaction under a transaction-level
 * advisory lock, so instances starting together do not race on the catalog.
 *
 * The password reaches the server only as a SCRAM-SHA-256 verifier computed here (as psql's
 * `\password` does): the clear text is never in a statement, the server log or pg_stat_activity.
 */
export async function provisionLoginRole(admin: Pool, role: LoginRole): Promise<void> {
  const verifier = scramVerifier(role.password);
  try {
    // The advisory lock is per database: two databases of one server provisioning at once can still
    // both try to create the (cluster-wide) group role. The loser sees duplicate_object; a retry finds it.
    for (let attempt = 1; ; attempt++) {
      try {
        await provisionOnce(admin, role, verifier);
        return;
      } catch (err) {
        const sqlstate = (err as { sqlstate?: string }).sqlstate;
        if (attempt >= 3 || (sqlstate !== '42710' && sqlstate !== '23505')) throw err;
      }
    }
  } catch (err) {
    throw new ProvisionError(
      `Could not create or update the login role "${role.name}" (${(err as Error).message}). ` +
        'The admin connection (DATABASE_URL or DB_*) needs CREATEROLE; or create the role yourself ' +
        `(LOGIN NOSUPERUSER NOBYPASSRLS, member of ${APP_GROUP_ROLE}) and set API_DB_USER and API_DB_PASS.`,
      { cause: err },
    );
  }
}

async function provisionOnce(admin: Pool, role: LoginRole, verifier: string): Promise<void> {
  await transaction(admin, async (tx) => {
    await execute(tx, sql`select pg_advisory_xact_lock(hashtext('accountdb-api provision'))`);
    const existing = await execute(
      tx,
      sql`select rolname, rolcanlogin from pg_roles where rolname in (${APP_GROUP_ROLE}, ${role.name})`,
    );
    const names = new Set(existing.map((r) => r.rolname as string));
    // Role names cannot be bound parameters: format('%I') quotes them on the server, then we run the result.
    const ddl = async (template: string, ...args: string[]) => {
      const row = await execute(tx, sql`select format(${template}, ${sql.join(args.map((a) => sql`${a}::text`))}) as ddl`, {
        fetch: 'one',
      });
      await execute(tx, row!.ddl as string);
    };
    if (!names.has(APP_GROUP_ROLE)) await ddl('CREATE ROLE %I NOLOGIN', APP_GROUP_ROLE);
    const attributes = 'LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD %L';
    await ddl(`${names.has(role.name) ? 'ALTER' : 'CREATE'} ROLE %I ${attributes}`, role.name, verifier);
    await ddl('GRANT %I TO %I', APP_GROUP_ROLE, role.name);
    await ddl('GRANT CONNECT ON DATABASE %I TO %I', await currentDatabase(tx), role.name);
  });
}

async function currentDatabase(tx: Parameters<typeof execute>[0]): Promise<string> {
  const row = await execute(tx, 'select current_database() as name', [], { fetch: 'one' });
  return row!.name as string;
}

/** `SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`, the form PostgreSQL stores (RFC 5802/7677). */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  const b64 = (b: Buffer) => b.toString('base64');
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}
