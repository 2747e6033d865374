import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificateOptions {
  /** subjectAltName entries of the server certificate. Default `['DNS:localhost']`. */
  serverAltNames?: readonly string[];
  /** Common name of the client certificate (PostgreSQL maps it to the role). Default `postgres`. */
  clientCommonName?: string;
}

/** Paths of PEM files made by {@link createTestCertificates}; every key is mode 0600. */
export interface TestCertificates {
  readonly dir: string;
  /** The CA that signed the server and client certificates. */
  readonly caCert: string;
  /** A second, unrelated CA that signed nothing we use. */
  readonly otherCaCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate for the same name, signed by the unrelated CA. */
  readonly otherClientCert: string;
  readonly otherClientKey: string;
  /** Delete the directory. */
  remove(): void;
}

// Our own minimal config: the machine's openssl.cnf may add extensions that would clash with ours.
const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

/**
 * A throwaway PKI made with the `openssl` CLI: a CA, a server certificate, a client certificate, and
 * a second CA (with its own client certificate) for negative tests. EC P-256 keys, valid for 2 days.
 */
export function createTestCertificates(options: TestCertificateOptions = {}): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'accountdb-tls-'));
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(path('openssl.cnf'), OPENSSL_CNF);
  const key = (name: string) => {
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path(name));
    chmodSync(path(name), 0o600);
  };
  const ca = (name: string, cn: string) => {
    key(`${name}.key`);
    openssl(
      'req',
      '-x509',
      '-new',
      '-config',
      path('openssl.cnf'),
      '-extensions',
      'ca',
      '-key',
      path(`${name}.key`),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '2',
      '-out',
      path(`${name}.crt`),
    );
  };
  const leaf = (name: string, cn: string, issuer: string, extensions: string) => {
    key(`${name}.key`);
    openssl(
      'req',
      '-new',
      '-config',
      path('openssl.cnf'),
      '-key',
      path(`${name}.key`),
      '-subj',
      `/CN=${cn}`,
      '-out',
      path(`${name}.csr`),
    );
    writeFileSync(path(`${name}.ext`), `basicConstraints = CA:FALSE\nauthorityKeyIdentifier = keyid\n${extensions}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path(`${issuer}.crt`),
      '-CAkey',
      path(`${issuer}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      path(`${name}.ext`),
      '-out',
      path(`${name}.crt`),
    );
  };
  try {
    ca('ca', 'AccountDB test CA');
    ca('other-ca', 'AccountDB unrelated test CA');
    const altNames = (options.serverAltNames ?? ['DNS:localhost']).join(',');
    leaf('server', 'localhost', 'ca', `extendedKeyUsage = serverAuth\nsubjectAltName = ${altNames}`);
    const clientCn = options.clientCommonName ?? 'postgres';
    leaf('client', clientCn, 'ca', 'extendedKeyUsage = clientAuth');
    leaf('other-client', clientCn, 'other-ca', 'extendedKeyUsage = clientAuth');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    caCert: path('ca.crt'),
    otherCaCert: path('other-ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
    otherClientCert: path('other-client.crt'),
    otherClientKey: path('other-client.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
