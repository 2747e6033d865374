import { ConnectionLostError } from './database-errors.js';
import { DatabaseUnavailableError, HookError, PoolTimeoutError } from './errors.js';
import { isCertificateFailure } from './tls.js';

/** Node socket error codes that mean the network or server went away, not that our SQL was wrong. */
const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
/** SQLSTATEs after which a new connection may well succeed. */
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
/** Authentication/authorisation failures: retrying cannot help and may lock the account. */
const AUTH_SQLSTATES = new Set(['28P01', '28000']);

/** The SQLSTATE (ours keep it in `sqlstate`) or the socket error code. */
function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; sqlstate?: unknown } | null;
  const code = typeof e?.sqlstate === 'string' ? e.sqlstate : e?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Whether `err` is a transient connection failure worth retrying: refused/reset/timeout, SQLSTATE
 * class 08, 57P01-57P03 (shutdown/crash/starting up), 53300 (too many connections). Never auth
 * failures (28P01/28000), pool exhaustion, or ordinary SQL errors.
 */
export function isTransientConnectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PoolTimeoutError || e instanceof HookError) return false;
    if (e instanceof ConnectionLostError) return true;
    const code = codeOf(e);
    if (code && AUTH_SQLSTATES.has(code)) return false;
    if (code && (TRANSIENT_NET_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) || code.startsWith('08'))) return true;
    if (e instanceof AggregateError && e.errors.some((inner) => isTransientConnectionError(inner))) return true;
    // Our own wrappers carry the cause's text in their message; judge the cause itself instead.
    if (e instanceof DatabaseUnavailableError) continue;
    const message = e instanceof Error ? e.message : '';
    // pg reports a dropped socket or a connect timeout without a code.
    if (/Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(message))
      return true;
  }
  return false;
}

/**
 * Besides class 28 (invalid authorization: bad password, unknown role, role without LOGIN), the
 * SQLSTATEs with which a reachable server refuses our login: unknown database, no CONNECT privilege.
 */
const REFUSAL_SQLSTATES = new Set(['3D000', '42501']);

/**
 * Whether a connect failed because the server refused us as configured (authentication, role,
 * database, or TLS required but not offered), not because it was unreachable or busy. Only a change
 * of configuration on one side can fix it, so retrying quickly only adds failed logins to its log.
 */
export function isConnectRefusal(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = codeOf(e);
    if (code && (code.startsWith('28') || REFUSAL_SQLSTATES.has(code))) return true;
    // A server certificate our trusted roots or host name reject: only a configuration change fixes it.
    if (isCertificateFailure(e)) return true;
    // pg's wording when sslmode asks for TLS and the server answers the SSLRequest with 'N'.
    if (!(e instanceof DatabaseUnavailableError) && e instanceof Error && /does not support SSL/i.test(e.message)) return true;
  }
  return false;
}

/**
 * Exponential backoff with full jitter (AWS's "full jitter"): a uniform random sleep in
 * [0, min(cap, base * 2^attempt)], so clients that failed together do not retry together.
 */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}
