import { ConfigError, type ConfigProblem } from '@accountdb/pool';
import { type BeginOptionProblem, beginStatement } from '@accountdb/pool/internal';
import { RlsContextError } from './errors.js';

/** A custom user-id validator: return the canonical text to store, or throw to reject. */
export type UserIdValidator = (value: unknown) => string;

/** How user ids are checked before they reach the database. */
export type UserIdKind = 'integer' | 'bigint' | 'uuid' | UserIdValidator;

/** Options of {@link createRls}. Every field is optional except `roles`. */
export interface RlsOptions {
  /** Application roles a context may carry, e.g. `['user', 'admin']`. Anything else is an `RlsContextError`. */
  readonly roles: readonly string[];
  /** Custom GUC holding the user id. Default `app.current_user_id`. */
  readonly userIdSetting?: string;
  /** Custom GUC holding the application role. Default `app.current_user_role`. */
  readonly roleSetting?: string;
  /**
   * How user ids are validated. `integer` (default; int4, numbers or digit strings, as the seed
   * accepted `"42"`), `bigint` (int8; also `bigint` values), `uuid`, or a custom validator.
   */
  readonly userId?: UserIdKind;
  /**
   * Application role → database role to switch to for the transaction (`SET LOCAL ROLE`). The login
   * role must be a member of each database role. Roles not listed keep the login role.
   */
  readonly databaseRoles?: Readonly<Record<string, string>>;
}

/** The user a scope runs for. */
export interface UserContext {
  /** The user id; validated per {@link RlsOptions.userId}. */
  readonly userId: unknown;
  /** The application role; must be one of {@link RlsOptions.roles}. */
  readonly role: unknown;
}

/** Transaction options of a scope. */
export interface ScopeOptions {
  /** `BEGIN READ ONLY`. Default false. */
  readonly readOnly?: boolean;
  /** Isolation level. Default: the server's (`read committed` unless configured otherwise). */
  readonly isolation?: 'read committed' | 'repeatable read' | 'serializable';
}

/** Options after validation, with defaults filled in. */
export interface ResolvedRlsOptions {
  readonly userIdSetting: string;
  readonly roleSetting: string;
  readonly roles: ReadonlySet<string>;
  readonly userId: UserIdKind;
  readonly databaseRoles: ReadonlyMap<string, string>;
}

/** A validated context, as the text bound to `set_config`. */
export interface CheckedContext {
  readonly userId: string;
  readonly role: string;
  /** Database role for `SET LOCAL ROLE`, when the application role maps to one. */
  readonly databaseRole: string | undefined;
}

/** The settings a context lives in unless {@link RlsOptions} names others. */
export const DEFAULT_SETTINGS = { userIdSetting: 'app.current_user_id', roleSetting: 'app.current_user_role' } as const;

// A custom GUC must be `prefix.name`; the server rejects anything else, so we reject it first.
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$.]*$/;
const MAX_NAME_BYTES = 63;
const MAX_CUSTOM_ID_LENGTH = 256;
const INT4_MIN = -2147483648;
const INT4_MAX = 2147483647;
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIGITS = /^-?\d+$/;
const INT4_RANGE = [BigInt(INT4_MIN), BigInt(INT4_MAX)] as const;
const INT8_RANGE = [INT8_MIN, INT8_MAX] as const;

function isPlainName(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    !value.includes('\0') &&
    Buffer.byteLength(value) <= MAX_NAME_BYTES &&
    value.trim() === value
  );
}

/** Validate {@link RlsOptions}; throws `ConfigError` listing every problem. */
export function resolveRlsOptions(options: RlsOptions): ResolvedRlsOptions {
  const problems: ConfigProblem[] = [];
  const userIdSetting = options.userIdSetting ?? DEFAULT_SETTINGS.userIdSetting;
  const roleSetting = options.roleSetting ?? DEFAULT_SETTINGS.roleSetting;
  for (const [variable, name] of [
    ['userIdSetting', userIdSetting],
    ['roleSetting', roleSetting],
  ] as const) {
    if (typeof name !== 'string' || !SETTING_NAME.test(name) || name.length > MAX_NAME_BYTES)
      problems.push({ variable, message: `must be a custom setting name like "${DEFAULT_SETTINGS.userIdSetting}"` });
  }
  if (userIdSetting === roleSetting) problems.push({ variable: 'roleSetting', message: 'must differ from userIdSetting' });
  const roles = new Set<string>();
  if (!Array.isArray(options.roles) || options.roles.length === 0) {
    problems.push({ variable: 'roles', message: 'must list at least one allowed role' });
  } else {
    for (const role of options.roles) {
      if (isPlainName(role)) roles.add(role);
      else problems.push({ variable: 'roles', message: 'each role must be a non-empty string of at most 63 bytes without NUL' });
    }
  }
  const userId = options.userId ?? 'integer';
  if (typeof userId !== 'function' && userId !== 'integer' && userId !== 'bigint' && userId !== 'uuid')
    problems.push({ variable: 'userId', message: 'must be "integer", "bigint", "uuid" or a validator function' });
  const databaseRoles = new Map<string, string>();
  for (const [appRole, dbRole] of Object.entries(options.databaseRoles ?? {})) {
    if (!roles.has(appRole)) problems.push({ variable: 'databaseRoles', message: `key "${appRole}" is not in roles` });
    else if (!isPlainName(dbRole))
      problems.push({ variable: 'databaseRoles', message: `role for "${appRole}" must be a database role name` });
    else databaseRoles.set(appRole, dbRole);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({ userIdSetting, roleSetting, roles, userId, databaseRoles });
}

/** Describe a rejected value by its shape only: ids and roles are request input and stay out of messages. */
function shape(value: unknown): string {
  if (typeof value === 'string') {
    if (value.length === 0) return 'an empty string';
    if (value.includes('\0')) return 'a string containing a NUL byte';
    return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`;
  }
  if (value === null) return 'null';
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : `a ${typeof value}`;
}

function checkUserId(kind: UserIdKind, value: unknown): string {
  if (typeof kind === 'function') {
    let text: unknown;
    try {
      text = kind(value);
    } catch (err) {
      throw new RlsContextError('userId', `was rejected by the validator (got ${shape(value)})`, { cause: err });
    }
    if (typeof text !== 'string' || text.length === 0 || text.includes('\0') || text.length > MAX_CUSTOM_ID_LENGTH)
      throw new RlsContextError(
        'userId',
        `validator must return a non-empty string of at most ${MAX_CUSTOM_ID_LENGTH} characters`,
      );
    return text;
  }
  if (kind === 'uuid') {
    if (typeof value === 'string' && UUID.test(value)) return value.toLowerCase();
    throw new RlsContextError('userId', `must be a UUID (got ${shape(value)})`);
  }
  // The common case, a number within int4, needs no BigInt.
  if (typeof value === 'number' && Number.isInteger(value) && value >= INT4_MIN && value <= INT4_MAX) return String(value);
  const [min, max] = kind === 'integer' ? INT4_RANGE : INT8_RANGE;
  let n: bigint | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'bigint') n = value;
  else if (typeof value === 'string' && value.length <= 20 && DIGITS.test(value)) n = BigInt(value);
  if (n === undefined || n < min || n > max)
    throw new RlsContextError(
      'userId',
      `must be an ${kind === 'integer' ? 'integer (int4)' : 'integer (int8)'} (got ${shape(value)})`,
    );
  return n.toString();
}

/** Validate a {@link UserContext}; throws {@link RlsContextError}. */
export function checkContext(options: ResolvedRlsOptions, context: UserContext): CheckedContext {
  if (typeof context !== 'object' || context === null) throw new RlsContextError('context', 'must be an object { userId, role }');
  const userId = checkUserId(options.userId, context.userId);
  const role = context.role;
  if (typeof role !== 'string' || !options.roles.has(role))
    throw new RlsContextError('role', `must be one of the configured roles (got ${shape(role)})`);
  return { userId, role, databaseRole: options.databaseRoles.get(role) };
}

/** The BEGIN statement for these options; every piece comes from a fixed table, none from input. */
export function scopeBegin(options: ScopeOptions = {}): string {
  if (typeof options !== 'object' || options === null) throw new RlsContextError('options', 'must be an object');
  const { readOnly, isolation } = options;
  return readOnly === undefined && isolation === undefined ? 'BEGIN' : beginStatement({ readOnly, isolation }, optionProblem);
}

const optionProblem: BeginOptionProblem = (field, problem) => new RlsContextError(field, problem);
