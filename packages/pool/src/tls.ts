/**
 * libpq's TLS settings (`sslrootcert`, `sslcert`, `sslkey`) turned into the `ssl` option of a pg
 * client. Files are checked when the configuration is loaded and read again for every new connection,
 * as libpq does, so a rotated certificate is picked up without a restart. Key material is never logged
 * and never put in an error message.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type ConnectionOptions, createSecureContext } from 'node:tls';
import type { PoolConfig, SslMode } from './config.js';
import type { ConfigProblem } from './errors.js';

/** The configuration fields naming TLS files. */
export type TlsFileSetting = 'sslrootcert' | 'sslcert' | 'sslkey';

/** libpq 16: `sslrootcert=system` means the TLS library's trusted roots (Node's default CA store here). */
export const SYSTEM_ROOTS = 'system';

interface TlsSettings {
  sslmode: SslMode;
  sslrootcert?: unknown;
  sslcert?: unknown;
  sslkey?: unknown;
}

/**
 * Check the TLS settings at configuration load: each file exists, is readable and holds what it should.
 * Returns the problems (named by `nameOf`) and the settings to keep (absolute paths, or `system`).
 * A path is shown in a problem unless it came from a URL (`fromUrl`): URL parameter values are never
 * echoed, since a mangled URL can put part of a password there.
 */
export function checkTlsSettings(
  input: TlsSettings,
  nameOf: (key: TlsFileSetting | 'sslmode') => string,
  fromUrl: (key: TlsFileSetting) => boolean,
): { problems: ConfigProblem[]; settings: Partial<Record<TlsFileSetting, string>> } {
  const problems: ConfigProblem[] = [];
  const settings: Partial<Record<TlsFileSetting, string>> = {};
  const paths: Partial<Record<TlsFileSetting, string>> = {};
  for (const key of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') problems.push({ variable: nameOf(key), message: 'must be a file path' });
    else if (value.includes('\0')) problems.push({ variable: nameOf(key), message: 'must not contain a NUL byte' });
    else if (key === 'sslrootcert' && value === SYSTEM_ROOTS) settings.sslrootcert = SYSTEM_ROOTS;
    else paths[key] = settings[key] = resolve(value);
  }
  if (settings.sslrootcert === SYSTEM_ROOTS && input.sslmode !== 'verify-full') {
    // libpq 16: any CA on the internet would pass verify-ca, so weaker modes are refused.
    problems.push({
      variable: nameOf('sslmode'),
      message: `must be verify-full when ${nameOf('sslrootcert')} is "system" (got ${input.sslmode})`,
    });
  }
  if ((input.sslcert === undefined) !== (input.sslkey === undefined)) {
    const missing = input.sslcert === undefined ? 'sslcert' : 'sslkey';
    const given = missing === 'sslcert' ? 'sslkey' : 'sslcert';
    problems.push({ variable: nameOf(given), message: `needs ${missing} too (a client certificate and its key go together)` });
  }

  const where = (key: TlsFileSetting) => (fromUrl(key) ? 'the file' : paths[key]);
  const read = (key: TlsFileSetting): string | undefined => {
    const path = paths[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      problems.push({ variable: nameOf(key), message: `cannot read ${where(key)} (${errnoOf(err)})` });
      return undefined;
    }
  };
  const certificate = (key: TlsFileSetting, text: string | undefined): X509Certificate | undefined => {
    if (text === undefined) return undefined;
    try {
      return new X509Certificate(text);
    } catch {
      problems.push({ variable: nameOf(key), message: `${where(key)} does not hold a PEM certificate` });
      return undefined;
    }
  };
  certificate('sslrootcert', read('sslrootcert'));
  const cert = certificate('sslcert', read('sslcert'));
  const keyText = read('sslkey');
  let key: KeyObject | undefined;
  if (keyText !== undefined) {
    try {
      key = createPrivateKey(keyText);
    } catch {
      // Never echo the parser's view of the file: it is a private key.
      problems.push({
        variable: nameOf('sslkey'),
        message: `${where('sslkey')} does not hold an unencrypted PEM private key (sslpassword is not supported)`,
      });
    }
  }
  if (cert && key && !cert.checkPrivateKey(key))
    problems.push({
      variable: nameOf('sslkey'),
      message: `${where('sslkey')} is not the key of the certificate in ${nameOf('sslcert')}`,
    });
  return { problems, settings };
}

/**
 * pg's `ssl` option for one TLS connection attempt (libpq semantics):
 * - `verify-full`: the chain must lead to a trusted root and the host name must match the certificate;
 * - `verify-ca`: the chain only;
 * - `prefer`/`require` with an `sslrootcert` file: like `verify-ca` (libpq: "if a root CA file exists,
 *   require behaves like verify-ca");
 * - otherwise: encrypted, unverified.
 * Trusted roots are the `sslrootcert` file, or Node's default CA store when it is unset or `system`.
 */
export async function tlsOptions(config: PoolConfig): Promise<ConnectionOptions> {
  const { sslmode, sslrootcert, sslcert, sslkey } = config;
  const caFile = sslrootcert !== undefined && sslrootcert !== SYSTEM_ROOTS ? sslrootcert : undefined;
  const verifyChain = sslmode === 'verify-full' || sslmode === 'verify-ca' || caFile !== undefined;
  const [ca, cert, key] = await Promise.all([
    readSetting('sslrootcert', caFile),
    readSetting('sslcert', sslcert),
    readSetting('sslkey', sslkey),
  ]);
  // A secure context rather than PEM strings: pg copies its `ssl` option onto the TLS socket, where a
  // deep util.inspect of the client would show a `key` string.
  const options: ConnectionOptions = {
    rejectUnauthorized: verifyChain,
    secureContext: createSecureContext({ ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) }),
  };
  // Node checks the host name unless told not to; libpq's verify-ca does not.
  if (verifyChain && sslmode !== 'verify-full') options.checkServerIdentity = () => undefined;
  return options;
}

async function readSetting(setting: TlsFileSetting, path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // Checked at load; it went away or changed permissions since.
    throw Object.assign(new Error(`cannot read the ${setting} file (${errnoOf(err)})`), { code: errnoOf(err) });
  }
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unreadable';
}

/** OpenSSL's certificate verification results as Node reports them, plus Node's host name check. */
const VERIFICATION_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Whether `err` is Node's report of a server certificate that failed verification. */
export function isCertificateFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && VERIFICATION_CODES.has(code);
}

/**
 * A failed check of the server's certificate, restated so the message says what failed and under
 * which sslmode; `code` and `cause` are the original's. Any other error is returned unchanged.
 */
export function explainTlsFailure(err: unknown, config: PoolConfig): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (!(err instanceof Error) || typeof code !== 'string' || !VERIFICATION_CODES.has(code)) return err;
  const roots =
    config.sslrootcert === undefined || config.sslrootcert === SYSTEM_ROOTS ? "Node's default CA store" : 'the sslrootcert file';
  return Object.assign(
    new Error(`server certificate verification failed (sslmode=${config.sslmode}, trusted roots: ${roots}): ${err.message}`, {
      cause: err,
    }),
    { code },
  );
}
