import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sharedAdminServer } from './source.js';

/** Connection fields for one test database, in the shape `@accountdb/pool` config accepts. */
export interface ConnectionFields {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** A fresh database for one test file, with helpers to reach it as the owner or as other roles. */
export interface TestDatabase extends ConnectionFields {
  /** URL as the superuser that owns the database. */
  url: string;
  /** Run SQL as the superuser on this database (setup and assertions only, never the code under test). */
  admin(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /**
   * Create a `LOGIN NOSUPERUSER NOBYPASSRLS` role with CONNECT on this database and USAGE on
   * `public`; returns its connection fields. RLS tests must run as such a role.
   */
  createRestrictedRole(name?: string): Promise<ConnectionFields & { url: string }>;
  /** Drop the database (terminating its backends) and every role created for it. */
  drop(): Promise<void>;
}

function parse(url: string): ConnectionFields {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

function toUrl(f: ConnectionFields): string {
  return `postgres://${encodeURIComponent(f.user)}:${encodeURIComponent(f.password)}@${f.host}:${f.port}/${encodeURIComponent(f.database)}`;
}

/** Create a database (and later roles) on the given admin URL, or on the run's shared server. */
export async function createTestDatabase(adminUrl?: string): Promise<TestDatabase> {
  const baseUrl = adminUrl ?? (await sharedAdminServer()).adminUrl;
  const base = parse(baseUrl);
  const suffix = randomBytes(5).toString('hex');
  const database = `test_${suffix}`;
  const maintenance = new pg.Client({ connectionString: baseUrl });
  await maintenance.connect();
  try {
    await maintenance.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await maintenance.end();
  }
  const fields: ConnectionFields = { ...base, database };
  const adminPool = new pg.Pool({ ...fields, max: 2 });
  adminPool.on('error', () => {});
  const roles: string[] = [];

  // Only the connection fields are enumerable, so `{ ...db }` is a valid pool config (the pool rejects unknown options).
  const helpers: Omit<TestDatabase, keyof ConnectionFields> = {
    url: toUrl(fields),
    admin: (text, values) => adminPool.query(text, values),
    async createRestrictedRole(name) {
      const role = name ?? `app_${suffix}_${roles.length}`;
      const password = randomBytes(12).toString('hex');
      const ident = pg.escapeIdentifier(role);
      await adminPool.query(
        `CREATE ROLE ${ident} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(password)}`,
      );
      roles.push(role);
      await adminPool.query(`GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(database)} TO ${ident}`);
      await adminPool.query(`GRANT USAGE ON SCHEMA public TO ${ident}`);
      const roleFields = { ...fields, user: role, password };
      return withHidden(roleFields, { url: toUrl(roleFields) });
    },
    async drop() {
      await adminPool.end();
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
        for (const role of roles) await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
      } finally {
        await c.end();
      }
    },
  };
  return withHidden(fields, helpers);
}

/** `fields` plus `extra` as non-enumerable properties: spreading the result copies the connection fields only. */
function withHidden<F extends object, E extends object>(fields: F, extra: E): F & E {
  const result = { ...fields } as F & E;
  for (const [key, value] of Object.entries(extra)) Object.defineProperty(result, key, { value, enumerable: false });
  return result;
}
