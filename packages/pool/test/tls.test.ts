import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join, relative } from 'node:path';
import { inspect } from 'node:util';
import {
  createTestCertificates,
  createTestDatabase,
  PostgresServer,
  type TestCertificates,
  type TestDatabase,
} from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  createPool,
  DatabaseUnavailableError,
  type Logger,
  loadConfig,
  type Pool,
  type PoolConfigInput,
  resolvePoolConfig,
} from '../src/index.js';

// A dedicated server with ssl=on, its certificates made by openssl for this run. The server
// certificate names only DNS:localhost, so connecting to 127.0.0.1 is a host name mismatch.
let certs: TestCertificates;
let server: PostgresServer;
let plainDb: TestDatabase;
const pools: Pool[] = [];
const CLIENT_ROLE = 'tls_client';

beforeAll(async () => {
  certs = createTestCertificates({ serverAltNames: ['DNS:localhost'], clientCommonName: CLIENT_ROLE });
  server = await PostgresServer.create({
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.caCert },
    // The client role may log in only over TLS with a certificate from our CA whose CN is its name.
    hba: [`hostssl all ${CLIENT_ROLE} 127.0.0.1/32 trust clientcert=verify-full`],
  });
  const admin = createPool({ ...superuser(), sslmode: 'disable', minConnections: 0 });
  await admin.query(`create role ${CLIENT_ROLE} login`);
  await admin.close();
  plainDb = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
});
afterAll(async () => {
  await server?.destroy();
  await plainDb?.drop();
  certs?.remove();
});

function superuser(): PoolConfigInput {
  return { host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' };
}

function makePool(overrides: PoolConfigInput, logger?: Logger): Pool {
  const pool = createPool(
    { ...superuser(), minConnections: 0, connectionTimeoutMs: 5000, ...overrides },
    logger ? { logger } : {},
  );
  pools.push(pool);
  return pool;
}

async function sslOf(pool: Pool): Promise<{ ssl: boolean; client_dn: string | null }> {
  const { rows } = await pool.query<{ ssl: boolean; client_dn: string | null }>(
    'select ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()',
  );
  return rows[0]!;
}

/** The rejection of `pool.query`, with its handler attached at once. */
function failure(pool: Pool): Promise<unknown> {
  return pool.query('select 1').then(
    () => {
      throw new Error('expected the connect to fail');
    },
    (err: unknown) => err,
  );
}

describe('server certificate verification', () => {
  test('verify-full with the right CA connects via localhost, encrypted', async () => {
    const pool = makePool({ host: 'localhost', sslmode: 'verify-full', sslrootcert: certs.caCert });
    expect(await sslOf(pool)).toMatchObject({ ssl: true });
  });

  test('verify-full with an unrelated CA fails with DatabaseUnavailableError naming certificate verification', async () => {
    const pool = makePool({ host: 'localhost', sslmode: 'verify-full', sslrootcert: certs.otherCaCert });
    const err = await failure(pool);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/server certificate verification failed \(sslmode=verify-full/);
    expect((err as Error).message).toContain('trusted roots: the sslrootcert file');
    expect((err as Error).message).not.toContain(server.password);
    expect(((err as Error).cause as { code?: string }).code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/);
  });

  test('verify-full checks the host name: 127.0.0.1 is not in the certificate', async () => {
    const pool = makePool({ host: '127.0.0.1', sslmode: 'verify-full', sslrootcert: certs.caCert });
    const err = await failure(pool);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/server certificate verification failed/);
    expect((err as Error).message).toMatch(/Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1/);
    expect(((err as Error).cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('verify-ca checks the chain but not the host name', async () => {
    const right = makePool({ host: '127.0.0.1', sslmode: 'verify-ca', sslrootcert: certs.caCert });
    expect(await sslOf(right)).toMatchObject({ ssl: true });
    const wrong = makePool({ host: '127.0.0.1', sslmode: 'verify-ca', sslrootcert: certs.otherCaCert });
    const err = await failure(wrong);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/server certificate verification failed \(sslmode=verify-ca/);
  });

  test('sslrootcert=system uses the default CA store (verify-full implied), which does not trust our private CA', async () => {
    const pool = makePool({ host: 'localhost', sslrootcert: 'system' });
    expect(pool.config.sslmode).toBe('verify-full');
    const err = await failure(pool);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/server certificate verification failed .*trusted roots: Node's default CA store/);
  });

  test('files are read at each connect: a CA file replaced after load is used by the next connection', async () => {
    const dir = join(certs.dir, 'rotating');
    mkdirSync(dir, { recursive: true });
    const caFile = join(dir, 'root.crt');
    copyFileSync(certs.otherCaCert, caFile);
    const pool = makePool({ host: 'localhost', sslmode: 'verify-full', sslrootcert: caFile });
    expect(await failure(pool)).toBeInstanceOf(DatabaseUnavailableError);
    copyFileSync(certs.caCert, caFile);
    expect(await sslOf(pool)).toMatchObject({ ssl: true });
  });
});

describe('require and prefer', () => {
  test('require is encrypted (pg_stat_ssl.ssl) and verifies nothing without a CA', async () => {
    const pool = makePool({ host: '127.0.0.1', sslmode: 'require' });
    expect(await sslOf(pool)).toMatchObject({ ssl: true });
  });

  test('require with an sslrootcert file behaves like verify-ca (as libpq does)', async () => {
    const wrong = makePool({ host: '127.0.0.1', sslmode: 'require', sslrootcert: certs.otherCaCert });
    const err = await failure(wrong);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/server certificate verification failed \(sslmode=require/);
    // The chain, not the host name: 127.0.0.1 is not in the certificate, yet this connects.
    const right = makePool({ host: '127.0.0.1', sslmode: 'require', sslrootcert: certs.caCert });
    expect(await sslOf(right)).toMatchObject({ ssl: true });
  });

  test('prefer uses TLS when the server offers it, and verifies the chain when given a CA', async () => {
    expect(await sslOf(makePool({ sslmode: 'prefer' }))).toMatchObject({ ssl: true });
    const err = await failure(makePool({ sslmode: 'prefer', sslrootcert: certs.otherCaCert }));
    expect((err as Error).message).toMatch(/server certificate verification failed \(sslmode=prefer/);
  });

  test('prefer falls back to plain TCP on a server without TLS, even with a CA given', async (ctx) => {
    const { rows } = await plainDb.admin('show ssl');
    if (rows[0]?.ssl !== 'off') ctx.skip(); // TEST_DATABASE_URL may point at a TLS server
    for (const extra of [{}, { sslrootcert: certs.caCert }]) {
      const pool = createPool({ ...plainDb, sslmode: 'prefer', minConnections: 0, ...extra });
      pools.push(pool);
      expect(await sslOf(pool)).toMatchObject({ ssl: false });
    }
  });
});

describe('client certificates', () => {
  const asClient = (overrides: PoolConfigInput): PoolConfigInput => ({
    host: 'localhost',
    user: CLIENT_ROLE,
    password: undefined,
    sslmode: 'verify-full',
    sslrootcert: certs.caCert,
    ...overrides,
  });

  test('a certificate from the CA is accepted by a clientcert=verify-full line', async () => {
    const pool = makePool(asClient({ sslcert: certs.clientCert, sslkey: certs.clientKey }));
    const { rows } = await pool.query<{ user: string }>('select current_user as user');
    expect(rows[0]?.user).toBe(CLIENT_ROLE);
    expect((await sslOf(pool)).client_dn).toBe(`/CN=${CLIENT_ROLE}`);
  });

  test('without a certificate the same line refuses the login', async () => {
    const err = await failure(makePool(asClient({})));
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/certificate/);
  });

  test('a certificate from another CA is refused', async () => {
    const err = await failure(makePool(asClient({ sslcert: certs.otherClientCert, sslkey: certs.otherClientKey })));
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
  });

  test('the private key never reaches logs, errors, the config or util.inspect', async () => {
    const lines: string[] = [];
    const make = (): Logger => {
      const at = (obj: unknown, msg?: unknown) => {
        lines.push(`${inspect(obj, { depth: 8 })} ${String(msg)}`);
      };
      return { trace: at, debug: at, info: at, warn: at, error: at, child: () => make() };
    };
    const keyBody = readFileSync(certs.clientKey, 'utf8').split('\n')[1]!;
    expect(keyBody.length).toBeGreaterThan(20);
    const pool = makePool(asClient({ sslcert: certs.clientCert, sslkey: certs.clientKey }), make());
    const lease = await pool.acquire();
    const seen = [
      inspect(pool, { depth: 4 }),
      inspect(lease, { depth: 2 }),
      // Deep: pg copies its `ssl` option onto the TLS socket's options; we hand it a secure context, no PEM.
      inspect(lease.client, { depth: 8 }),
      JSON.stringify(pool.config),
      inspect(pool.config),
    ];
    lease.release();
    const wrongKey = await failure(makePool(asClient({ sslcert: certs.otherClientCert, sslkey: certs.otherClientKey }), make()));
    expect(wrongKey).toBeInstanceOf(DatabaseUnavailableError);
    seen.push(inspect(wrongKey, { depth: 8 }), String((wrongKey as Error).stack));
    expect(lines.length).toBeGreaterThan(0);
    for (const text of [...seen, ...lines]) expect(text).not.toContain(keyBody);
  });
});

describe('configuration', () => {
  const settings = [
    ['sslrootcert', 'DB_SSLROOTCERT', 'PGSSLROOTCERT'],
    ['sslcert', 'DB_SSLCERT', 'PGSSLCERT'],
    ['sslkey', 'DB_SSLKEY', 'PGSSLKEY'],
  ] as const;
  // Each setting with a file of its own kind; cert and key always come as a pair.
  const files = () => ({
    sslrootcert: [certs.caCert, certs.otherCaCert],
    sslcert: [certs.clientCert],
    sslkey: [certs.clientKey],
  });
  const pairEnv = (prefix: 'DB_' | 'PG') => ({ [`${prefix}SSLCERT`]: certs.clientCert, [`${prefix}SSLKEY`]: certs.clientKey });

  test.each(settings)('%s from %s, DATABASE_URL and %s, in that order of precedence', (key, dbName, pgName) => {
    const [file] = files()[key];
    const url = `postgres://h/db?${key}=${encodeURIComponent(file!)}`;
    const base = key === 'sslrootcert' ? {} : { ...pairEnv('PG') };
    expect(loadConfig({ ...base, [pgName]: file })[key]).toBe(file);
    expect(loadConfig({ ...base, DATABASE_URL: url })[key]).toBe(file);
    expect(loadConfig({ ...base, [dbName]: file })[key]).toBe(file);
    if (key === 'sslrootcert') {
      // Precedence shown with two different CA files: DB_* > DATABASE_URL > PG*.
      const [a, b] = files().sslrootcert;
      const urlB = `postgres://h/db?sslrootcert=${encodeURIComponent(b!)}`;
      expect(loadConfig({ PGSSLROOTCERT: a, DATABASE_URL: urlB }).sslrootcert).toBe(b);
      expect(loadConfig({ PGSSLROOTCERT: b, DATABASE_URL: urlB, DB_SSLROOTCERT: a }).sslrootcert).toBe(a);
    } else {
      // A bad path at the lower level is overridden (never read) by the higher one.
      expect(loadConfig({ ...base, [pgName]: '/nonexistent', DATABASE_URL: url })[key]).toBe(file);
      expect(loadConfig({ ...base, DATABASE_URL: `postgres://h/db?${key}=%2Fnonexistent`, [dbName]: file })[key]).toBe(file);
    }
  });

  test('in code: fields, connectionString parameters (fields win), relative paths made absolute', () => {
    const config = resolvePoolConfig({ sslrootcert: certs.caCert, sslcert: certs.clientCert, sslkey: certs.clientKey });
    expect(config).toMatchObject({ sslrootcert: certs.caCert, sslcert: certs.clientCert, sslkey: certs.clientKey });
    const q = `sslrootcert=${encodeURIComponent(certs.otherCaCert)}&sslcert=${encodeURIComponent(certs.clientCert)}&sslkey=${encodeURIComponent(certs.clientKey)}`;
    const fromUrl = resolvePoolConfig({ connectionString: `postgres://h/db?${q}` });
    expect(fromUrl).toMatchObject({ sslrootcert: certs.otherCaCert, sslcert: certs.clientCert, sslkey: certs.clientKey });
    expect(resolvePoolConfig({ connectionString: `postgres://h/db?${q}`, sslrootcert: certs.caCert }).sslrootcert).toBe(
      certs.caCert,
    );
    const relativePath = relative(process.cwd(), certs.caCert);
    expect(relativePath.startsWith('/')).toBe(false);
    expect(resolvePoolConfig({ sslrootcert: relativePath }).sslrootcert).toBe(certs.caCert);
  });

  test('sslrootcert=system: sslmode defaults to verify-full; a weaker explicit sslmode is a ConfigError', () => {
    expect(loadConfig({ PGSSLROOTCERT: 'system' })).toMatchObject({ sslrootcert: 'system', sslmode: 'verify-full' });
    expect(loadConfig({ DATABASE_URL: 'postgres://h/db?sslrootcert=system&sslmode=verify-full' }).sslmode).toBe('verify-full');
    expect(() => loadConfig({ DB_SSLROOTCERT: 'system', PGSSLMODE: 'require' })).toThrow(ConfigError);
    try {
      loadConfig({ DB_SSLROOTCERT: 'system', PGSSLMODE: 'verify-ca' });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        { variable: 'PGSSLMODE', message: 'must be verify-full when DB_SSLROOTCERT is "system" (got verify-ca)' },
      ]);
    }
    expect.assertions(4);
  });

  test('a missing or unreadable file is a ConfigError naming the variable and the path', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return [...(err as ConfigError).problems];
      }
      throw new Error('expected a ConfigError');
    };
    const missing = join(certs.dir, 'no-such-root.crt');
    expect(problems({ DB_SSLROOTCERT: missing })).toEqual([
      { variable: 'DB_SSLROOTCERT', message: `cannot read ${missing} (ENOENT)` },
    ]);
    expect(problems({ PGSSLROOTCERT: certs.dir })).toEqual([
      { variable: 'PGSSLROOTCERT', message: `cannot read ${certs.dir} (EISDIR)` },
    ]);
    // Every problem at once, each by its own variable; a path from a URL is not echoed (URL values never are).
    const all = problems({ DATABASE_URL: `postgres://h/db?sslcert=${encodeURIComponent(missing)}`, PGSSLKEY: missing });
    expect(all).toEqual([
      { variable: 'DATABASE_URL', message: 'cannot read the file (ENOENT)' },
      { variable: 'PGSSLKEY', message: `cannot read ${missing} (ENOENT)` },
    ]);
    expect(() => resolvePoolConfig({ connectionString: `postgres://h/db?sslrootcert=${encodeURIComponent(missing)}` })).toThrow(
      /connectionString: cannot read the file \(ENOENT\)/,
    );
  });

  test('wrong contents are ConfigErrors that never echo the file', () => {
    const keyText = readFileSync(certs.clientKey, 'utf8');
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ DB_SSLROOTCERT: certs.clientKey }, 'DB_SSLROOTCERT', /does not hold a PEM certificate/],
      [{ DB_SSLCERT: certs.clientKey, DB_SSLKEY: certs.clientKey }, 'DB_SSLCERT', /does not hold a PEM certificate/],
      [{ DB_SSLCERT: certs.clientCert, DB_SSLKEY: certs.clientCert }, 'DB_SSLKEY', /unencrypted PEM private key/],
      [
        { DB_SSLCERT: certs.clientCert, DB_SSLKEY: certs.otherClientKey },
        'DB_SSLKEY',
        /is not the key of the certificate in DB_SSLCERT/,
      ],
      [{ DB_SSLCERT: certs.clientCert }, 'DB_SSLCERT', /needs sslkey too/],
      [{ PGSSLKEY: certs.clientKey }, 'PGSSLKEY', /needs sslcert too/],
    ];
    for (const [env, variable, message] of cases) {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      const problem = (error as ConfigError).problems.find((p) => p.variable === variable);
      expect(problem?.message, JSON.stringify(env)).toMatch(message);
      expect(inspect(error)).not.toContain(keyText.split('\n')[1]);
    }
  });

  test('wrong types given in code are ConfigErrors', () => {
    expect(() => resolvePoolConfig({ sslrootcert: 5 as unknown as string })).toThrow(/sslrootcert: must be a string/);
    expect(() => resolvePoolConfig({ sslrootcert: '' })).toThrow(/sslrootcert: must be a file path/);
  });

  test("libpq's default files (~/.postgresql/root.crt, postgresql.crt/.key) are not read", () => {
    const home = join(certs.dir, 'home');
    mkdirSync(join(home, '.postgresql'), { recursive: true });
    copyFileSync(certs.caCert, join(home, '.postgresql', 'root.crt'));
    copyFileSync(certs.clientCert, join(home, '.postgresql', 'postgresql.crt'));
    copyFileSync(certs.clientKey, join(home, '.postgresql', 'postgresql.key'));
    const config = loadConfig({ HOME: home, PGSSLMODE: 'require' });
    expect(config).toMatchObject({ sslmode: 'require' });
    expect(config.sslrootcert ?? config.sslcert ?? config.sslkey).toBeUndefined();
  });
});

describe('lease.cancel() on a TLS connection', () => {
  /** A pass-through proxy that records the first 8 bytes each client connection sends. */
  async function recordingProxy(): Promise<{ port: number; heads: string[]; close(): Promise<void> }> {
    const heads: string[] = [];
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(server.port, server.host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      let first = true;
      client.on('data', (chunk) => {
        if (first) heads.push(chunk.subarray(0, 8).toString('hex'));
        first = false;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    return {
      port: typeof address === 'object' && address ? address.port : 0,
      heads,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => proxy.close(() => resolve()));
      },
    };
  }

  test('the CancelRequest goes over TLS (SSLRequest first) and cancels the statement', async () => {
    const proxy = await recordingProxy();
    try {
      const pool = makePool({ host: '127.0.0.1', port: proxy.port, sslmode: 'require', maxConnections: 2 });
      const lease = await pool.acquire();
      expect((await lease.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]?.ssl).toBe(
        true,
      );
      const running = lease.query('select pg_sleep(60)').then(
        () => undefined,
        (e: unknown) => e,
      );
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await pool.query<{ state: string }>('select state from pg_stat_activity where pid = $1', [
          lease.processId,
        ]);
        if (rows[0]?.state === 'active') break;
        if (Date.now() > deadline) throw new Error('the statement never became active');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await lease.cancel();
      expect(await running).toMatchObject({ code: 'QUERY_CANCELED', sqlstate: '57014' });
      lease.release();
      // Two pool connections and the cancel: each began with SSLRequest (length 8, code 80877103);
      // no CancelRequest (length 16, code 80877102) crossed the network in clear.
      expect(proxy.heads).toEqual(['0000000804d2162f', '0000000804d2162f', '0000000804d2162f']);
    } finally {
      await proxy.close();
    }
  });
});
