import { inspect } from 'node:util';
import { createTestDatabase, freePort, type TestDatabase } from '@accountdb/test-db';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, createPool, DatabaseUnavailableError, loadConfig, type Pool, type PoolConfig } from '../src/index.js';
import { recordingLogger } from './recording-logger.js';

// Every password of the matrix is `Pre7fix<special>S3cr3t-pw`: finding either half anywhere is a leak,
// whichever way a mistaken parse would have cut it.
const SPECIALS = ['@', ':', '/', '?', '#', '%', '[', ']', ' '];
const MARKERS = ['Pre7fix', 'S3cr3t-pw'];
const passwordWith = (special: string) => `Pre7fix${special}S3cr3t-pw`;
// Unencoded, these make a URL that cannot be split with certainty (libpq reads / ? # as delimiters and % as an escape).
const REFUSED_UNENCODED = new Set(['/', '?', '#', '%']);

let db: TestDatabase;
let closedPort = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  closedPort = await freePort();
});
afterAll(() => db.drop());

/** Every rendering a user may print or ship to a log aggregator. */
function renderings(value: unknown): string[] {
  const texts = [inspect(value, { depth: null }), inspect(value, { depth: null, showHidden: true, getters: false })];
  try {
    texts.push(JSON.stringify(value) ?? '');
  } catch (err) {
    texts.push(String(err));
  }
  if (value instanceof Error) texts.push(value.message, value.stack ?? '', String(value.cause ?? ''));
  return texts;
}

function hitsIn(texts: string[]): string[] {
  const hits: string[] = [];
  for (const [i, text] of texts.entries())
    for (const marker of MARKERS) if (text.includes(marker)) hits.push(`${marker} in rendering ${i}: ${text.slice(0, 200)}`);
  return hits;
}

interface Outcome {
  error: unknown;
  hits: string[];
}

/** Build a pool from `url` through the environment or code, run one query, and search everything it produced. */
async function attempt(source: 'DATABASE_URL' | 'connectionString', url: string): Promise<Outcome> {
  const { logger, lines } = recordingLogger();
  const texts: string[] = [];
  let pool: Pool | undefined;
  let error: unknown;
  try {
    const config: PoolConfig | undefined =
      source === 'DATABASE_URL'
        ? loadConfig(
            { DATABASE_URL: url, DB_MIN_CONNECTIONS: '0', DB_SSLMODE: 'disable', DB_CONNECTION_TIMEOUT: '2' },
            { logger },
          )
        : undefined;
    pool = createPool(config ?? { connectionString: url, minConnections: 0, sslmode: 'disable', connectionTimeoutMs: 2000 }, {
      logger,
    });
    texts.push(...renderings(pool), ...renderings(pool.config));
    const result = pool.query('select 1').then(
      () => undefined,
      (err: unknown) => err,
    );
    error = await result;
    texts.push(...renderings(pool), ...renderings(pool.stats()));
  } catch (err) {
    error = err;
  } finally {
    await pool?.close({ timeoutMs: 1000 });
  }
  texts.push(...renderings(error));
  for (const line of lines) texts.push(...renderings(line));
  return { error, hits: hitsIn(texts) };
}

describe('the password is never echoed, however the URL is written', () => {
  const cases = SPECIALS.flatMap((special) => [[special, 'encoded'] as const, [special, 'unencoded'] as const]);

  test.each(cases)('password with "%s", %s', async (special, encoding) => {
    const password = passwordWith(special);
    const written = encoding === 'encoded' ? encodeURIComponent(password) : password;
    const refused = encoding === 'unencoded' && REFUSED_UNENCODED.has(special);
    const targets = [
      { name: 'closed port', url: `postgres://app:${written}@127.0.0.1:${closedPort}/db` },
      { name: 'wrong password', url: `postgres://${db.user}:${written}@127.0.0.1:${db.port}/${db.database}` },
    ];
    for (const target of targets) {
      for (const source of ['DATABASE_URL', 'connectionString'] as const) {
        const where = `${target.name} via ${source}`;
        const { error, hits } = await attempt(source, target.url);
        expect.soft(hits, where).toEqual([]);
        if (refused) {
          expect(error, where).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).problems, where).toEqual([
            { variable: source, message: expect.stringContaining('percent-encode special characters in the password') },
          ]);
        } else {
          // The user info was split at the right "@": the pool went to the right host, and was refused there.
          expect(error, where).toBeInstanceOf(DatabaseUnavailableError);
          const port = target.name === 'closed port' ? closedPort : db.port;
          expect((error as Error).message, where).toContain(`at 127.0.0.1:${port}:`);
          if (target.name === 'wrong password') expect((error as { cause?: { code?: string } }).cause?.code, where).toBe('28P01');
        }
      }
    }
  });
});

describe('special characters in a real password', () => {
  const password = 'p@ss:w/o?r#d%[x] y';
  let role: { user: string };

  beforeAll(async () => {
    role = await db.createRestrictedRole();
    await db.admin(`alter role ${pg.escapeIdentifier(role.user)} password ${pg.escapeLiteral(password)}`);
  });

  test('percent-encoded in a URL, every character round-trips and the login succeeds', async () => {
    const url = `postgres://${role.user}:${encodeURIComponent(password)}@127.0.0.1:${db.port}/${db.database}`;
    const pool = createPool({ connectionString: url, sslmode: 'disable', minConnections: 0 });
    try {
      expect((await pool.query('select current_user as u')).rows[0]!.u).toBe(role.user);
    } finally {
      await pool.close();
    }
  });

  test('an unencoded "@" (and ":", "[", "]", space) in the password still logs in: the user info ends at the last "@"', async () => {
    const plain = 'p@ss:w[x] y@z';
    await db.admin(`alter role ${pg.escapeIdentifier(role.user)} password ${pg.escapeLiteral(plain)}`);
    const config = loadConfig({
      DATABASE_URL: `postgres://${role.user}:${plain}@127.0.0.1:${db.port}/${db.database}`,
      DB_SSLMODE: 'disable',
      DB_MIN_CONNECTIONS: '0',
    });
    expect(config.hosts).toEqual([{ host: '127.0.0.1', port: db.port }]);
    const pool = createPool(config);
    try {
      expect((await pool.query('select current_user as u')).rows[0]!.u).toBe(role.user);
    } finally {
      await pool.close();
    }
  });
});
