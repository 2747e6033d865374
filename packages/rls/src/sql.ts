import { quoteIdentifier } from '@accountdb/pool/internal';
import pg from 'pg';
import type { ContextSettings } from './catalog.js';
import { RlsContextError } from './errors.js';
import { DEFAULT_SETTINGS } from './options.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const SETTING = /^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$/;

/** SQL type the user-id accessor returns. */
export type UserIdSqlType = 'integer' | 'bigint' | 'uuid' | 'text';

/** Options of {@link accessorFunctionsSql}. */
export interface AccessorFunctionsOptions extends Partial<ContextSettings> {
  /** Return type of the user-id accessor. Default `integer`. */
  readonly userIdType?: UserIdSqlType;
}

function ident(value: string, what: string): string {
  const problem = () =>
    new RlsContextError(what, 'must be a plain SQL identifier (letters, digits, _ and $; at most 63 characters)');
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) throw problem();
  return quoteIdentifier(value, problem);
}

/** `app.current_user_id` → `"app"."current_user_id"`: the accessor is named after its setting. */
function accessorName(setting: string, what: string): { schema: string; qualified: string } {
  if (typeof setting !== 'string' || !SETTING.test(setting) || setting.split('.').length !== 2)
    throw new RlsContextError(what, 'must be a setting name of the form "schema.function"');
  const [schema, fn] = setting.split('.') as [string, string];
  return { schema: ident(schema, what), qualified: `${ident(schema, what)}.${ident(fn, what)}` };
}

function accessor(setting: string, what: string, returns: string): string {
  const { qualified } = accessorName(setting, what);
  const cast = returns === 'text' ? '' : `::${returns}`;
  // nullif(…, '') makes "unset" and "cleared" the same NULL, so every policy fails closed; STABLE with
  // a pinned search_path so it is planned once per statement when wrapped in (select …).
  return [
    `CREATE OR REPLACE FUNCTION ${qualified}() RETURNS ${returns}`,
    '  LANGUAGE sql STABLE PARALLEL SAFE',
    '  SET search_path = pg_catalog',
    `  AS $accessor$ SELECT nullif(pg_catalog.current_setting(${pg.escapeLiteral(setting)}, true), '')${cast} $accessor$;`,
  ].join('\n');
}

/**
 * DDL (for a migration) creating fail-closed accessor functions named after the settings, by default
 * `app.current_user_id()` and `app.current_user_role()`: NULL when the context is unset, so a policy
 * comparing against them matches no row outside a user scope. Creates the schema if missing and
 * grants USAGE on it to PUBLIC (the functions reveal only the caller's own settings).
 */
export function accessorFunctionsSql(options: AccessorFunctionsOptions = {}): string {
  const userIdSetting = options.userIdSetting ?? DEFAULT_SETTINGS.userIdSetting;
  const roleSetting = options.roleSetting ?? DEFAULT_SETTINGS.roleSetting;
  const userIdType = options.userIdType ?? 'integer';
  if (!['integer', 'bigint', 'uuid', 'text'].includes(userIdType))
    throw new RlsContextError('userIdType', 'must be "integer", "bigint", "uuid" or "text"');
  const schemas = [
    ...new Set([accessorName(userIdSetting, 'userIdSetting').schema, accessorName(roleSetting, 'roleSetting').schema]),
  ];
  return [
    ...schemas.map((s) => `CREATE SCHEMA IF NOT EXISTS ${s};\nGRANT USAGE ON SCHEMA ${s} TO PUBLIC;`),
    accessor(userIdSetting, 'userIdSetting', userIdType),
    accessor(roleSetting, 'roleSetting', 'text'),
  ].join('\n');
}

/** Options of {@link userOwnedPolicySql}. */
export interface UserOwnedPolicyOptions {
  /** Table name (unqualified). */
  readonly table: string;
  /** Schema of the table. Default `public`. */
  readonly schema?: string;
  /** Column holding the owning user's id. Default `user_id`. */
  readonly column?: string;
  /** Setting the user id lives in (names the accessor). Default `app.current_user_id`. */
  readonly userIdSetting?: string;
  /** Policy name. Default `<table>_owner`. */
  readonly policy?: string;
}

/**
 * DDL for the documented policy of a user-owned table: ENABLE and FORCE row level security, and one
 * policy letting a user see and write only rows whose `column` equals `(select app.current_user_id())`.
 * The sub-select makes the planner evaluate the accessor once per statement instead of once per row.
 */
export function userOwnedPolicySql(options: UserOwnedPolicyOptions): string {
  const table = `${ident(options.schema ?? 'public', 'schema')}.${ident(options.table, 'table')}`;
  const column = ident(options.column ?? 'user_id', 'column');
  const policy = ident(options.policy ?? `${options.table}_owner`, 'policy');
  const { qualified } = accessorName(options.userIdSetting ?? DEFAULT_SETTINGS.userIdSetting, 'userIdSetting');
  const owner = `${column} = (SELECT ${qualified}())`;
  return [
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`,
    `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY;`,
    `CREATE POLICY ${policy} ON ${table} USING (${owner}) WITH CHECK (${owner});`,
  ].join('\n');
}
