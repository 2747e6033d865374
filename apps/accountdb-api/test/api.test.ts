import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signIn, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers.js';

// One app and database for the file: every test reads and writes through HTTP as the demo users.
let t: TestApp;
let alice: { token: string; userId: number };
let bob: { token: string; userId: number };
let adminUser: { token: string; userId: number };

beforeAll(async () => {
  t = await startTestApp();
  [alice, bob, adminUser] = await Promise.all([
    signIn(t.app, 'alice@example.com'),
    signIn(t.app, 'bob@example.com'),
    signIn(t.app, 'admin@example.com'),
  ]);
});
afterAll(async () => {
  await t?.close();
});

type Caller = { token: string };
const call = (who: Caller | undefined, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
  t.app.inject({
    method,
    url,
    ...(who ? { headers: { authorization: `Bearer ${who.token}` } } : {}),
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

const NEW_ITEMS = {
  accounts: () => ({ name: `Holiday ${Math.random().toString(36).slice(2, 8)}`, kind: 'savings', balanceCents: 500 }),
  hardware: () => ({ name: 'Spare phone', kind: 'phone', serialNumber: `SN-${Math.random().toString(36).slice(2, 10)}` }),
  cards: async (who: Caller) => {
    const accounts = (await call(who, 'GET', '/accounts')).json() as { id: number }[];
    return { accountId: accounts[0]!.id, label: 'Travel', brand: 'mastercard', last4: '4242', expiresOn: '2030-01-31' };
  },
} as const;

async function newItem(resource: keyof typeof NEW_ITEMS, who: Caller): Promise<Record<string, unknown>> {
  return resource === 'cards' ? NEW_ITEMS.cards(who) : NEW_ITEMS[resource]();
}

describe('sign-in and tokens', () => {
  test('demo users sign in; a wrong password or unknown e-mail is 401 with the same message', async () => {
    expect(alice.userId).not.toBe(bob.userId);
    const wrong = await call(undefined, 'POST', '/auth/sign-in', { email: 'alice@example.com', password: 'nope' });
    const unknown = await call(undefined, 'POST', '/auth/sign-in', { email: 'nobody@example.com', password: 'nope' });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().message).toBe(unknown.json().message);
    expect((await call(alice, 'GET', '/me')).json()).toMatchObject({ id: alice.userId, displayName: 'Alice' });
  });

  test('no token, a forged token, an expired token, a token with foreign claims: 401 on every user route', async () => {
    const forged = {
      token: createSigner({ key: 'not-the-secret-not-the-secret-000000', expiresIn: 60_000 })({ sub: bob.userId, role: 'admin' }),
    };
    const expired = {
      token: createSigner({ key: TEST_JWT_SECRET, clockTimestamp: Date.now() - 7_200_000, expiresIn: 60_000 })({
        sub: alice.userId,
        role: 'user',
      }),
    };
    const noneAlg = {
      token: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: alice.userId, role: 'admin' })).toString('base64url')}.`,
    };
    const badClaims = {
      token: createSigner({ key: TEST_JWT_SECRET, expiresIn: 60_000 })({ sub: 'x; drop table users', role: 'root' }),
    };
    for (const url of ['/me', '/accounts', '/hardware/1', '/cards', '/admin/stats']) {
      expect((await call(undefined, 'GET', url)).statusCode, `${url} without a token`).toBe(401);
      for (const [name, who] of Object.entries({ forged, expired, noneAlg, badClaims })) {
        expect((await call(who, 'GET', url)).statusCode, `${url} with a ${name} token`).toBe(401);
      }
    }
  });

  test('admin routes refuse non-admins (403) and serve admins', async () => {
    for (const url of ['/admin/stats', '/admin/pool', '/admin/migrations', '/admin/maintenance/plan']) {
      expect((await call(alice, 'GET', url)).statusCode, url).toBe(403);
      expect((await call(adminUser, 'GET', url)).statusCode, url).toBe(200);
    }
    expect((await call(alice, 'POST', '/admin/maintenance/run', {})).statusCode).toBe(403);
  });
});

describe.each(['accounts', 'hardware', 'cards'] as const)(
  '/%s: user A never sees, updates or deletes user B’s rows',
  (resource) => {
    test('lists and reads show only the caller’s rows; another user’s id is 404', async () => {
      const mine = (await call(alice, 'GET', `/${resource}`)).json() as { id: number; userId: number }[];
      const theirs = (await call(bob, 'GET', `/${resource}`)).json() as { id: number; userId: number }[];
      expect(mine.length).toBeGreaterThan(0);
      expect(theirs.length).toBeGreaterThan(0);
      expect(mine.every((r) => r.userId === alice.userId)).toBe(true);
      expect(theirs.every((r) => r.userId === bob.userId)).toBe(true);
      const bobsId = theirs[0]!.id;
      expect(mine.some((r) => r.id === bobsId)).toBe(false);
      expect((await call(alice, 'GET', `/${resource}/${bobsId}`)).statusCode).toBe(404);
      expect((await call(bob, 'GET', `/${resource}/${bobsId}`)).statusCode).toBe(200);
    });

    test('create, update and delete own rows; another user’s row is 404 to PATCH and DELETE and stays as it was', async () => {
      const created = await call(alice, 'POST', `/${resource}`, await newItem(resource, alice));
      expect(created.statusCode, created.body).toBe(201);
      const item = created.json() as { id: number; userId: number };
      expect(item.userId).toBe(alice.userId);

      const patch = resource === 'cards' ? { label: 'Renamed' } : { name: 'Renamed' };
      expect((await call(bob, 'PATCH', `/${resource}/${item.id}`, patch)).statusCode).toBe(404);
      expect((await call(bob, 'DELETE', `/${resource}/${item.id}`)).statusCode).toBe(404);
      const unchanged = (await call(alice, 'GET', `/${resource}/${item.id}`)).json();
      expect(unchanged).toEqual(item);

      const updated = await call(alice, 'PATCH', `/${resource}/${item.id}`, patch);
      expect(updated.statusCode).toBe(200);
      expect(updated.json()).toMatchObject(patch);
      expect((await call(alice, 'DELETE', `/${resource}/${item.id}`)).statusCode).toBe(204);
      expect((await call(alice, 'GET', `/${resource}/${item.id}`)).statusCode).toBe(404);
    });

    test('creating a row for, or handing a row to, another user is refused by the policy’s WITH CHECK: 403', async () => {
      const forBob = await call(alice, 'POST', `/${resource}`, { ...(await newItem(resource, alice)), userId: bob.userId });
      expect(forBob.statusCode, forBob.body).toBe(403);
      const own = (await call(alice, 'POST', `/${resource}`, await newItem(resource, alice))).json() as { id: number };
      expect((await call(alice, 'PATCH', `/${resource}/${own.id}`, { userId: bob.userId })).statusCode).toBe(403);
      expect((await call(alice, 'GET', `/${resource}/${own.id}`)).json()).toMatchObject({ userId: alice.userId });
      const bobs = (await call(bob, 'GET', `/${resource}`)).json() as { id: number }[];
      expect(bobs.some((r) => r.id === own.id)).toBe(false);
    });
  },
);

describe('errors mapped to HTTP', () => {
  test('validation: 400 (body, params, query)', async () => {
    expect((await call(alice, 'POST', '/accounts', { name: '', kind: 'checking' })).statusCode).toBe(400);
    expect((await call(alice, 'POST', '/accounts', { name: 'x', kind: 'checking', extra: 1 })).statusCode).toBe(400);
    expect((await call(alice, 'GET', '/accounts/abc')).statusCode).toBe(400);
    expect((await call(alice, 'GET', '/accounts?limit=100000')).statusCode).toBe(400);
    expect((await call(alice, 'PATCH', '/hardware/1', {})).statusCode).toBe(400);
    const body = (await call(alice, 'POST', '/cards', { label: 'x' })).json();
    expect(body).toMatchObject({ statusCode: 400, code: 'VALIDATION_FAILED' });
  });

  test('a duplicate is 409; a card on another user’s account is 409 and reveals nothing', async () => {
    const first = await call(alice, 'POST', '/accounts', { name: 'Unique name', kind: 'checking' });
    expect(first.statusCode).toBe(201);
    const again = await call(alice, 'POST', '/accounts', { name: 'Unique name', kind: 'savings' });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('CONFLICT');
    // Bob may use the same name: uniqueness is per user.
    expect((await call(bob, 'POST', '/accounts', { name: 'Unique name', kind: 'checking' })).statusCode).toBe(201);
    const bobsAccount = ((await call(bob, 'GET', '/accounts')).json() as { id: number }[])[0]!.id;
    const card = { accountId: bobsAccount, label: 'Sneaky', brand: 'visa', last4: '0000', expiresOn: '2030-01-01' };
    const refused = await call(alice, 'POST', '/cards', card);
    expect(refused.statusCode).toBe(409);
    expect((await call(alice, 'POST', '/cards', { ...card, accountId: 2_000_000_000 })).json()).toEqual(refused.json());
  });

  test('an exhausted pool is 503 with Retry-After', async () => {
    const leases = await Promise.all(Array.from({ length: t.pool.stats().max }, () => t.pool.acquire()));
    try {
      const busy = await call(alice, 'GET', '/accounts');
      expect(busy.statusCode).toBe(503);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.json().code).toBe('POOL_TIMEOUT');
    } finally {
      for (const lease of leases) lease.release();
    }
    expect((await call(alice, 'GET', '/accounts')).statusCode).toBe(200);
  });

  test('unknown routes are a JSON 404', async () => {
    const missing = await call(alice, 'GET', '/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('admin and docs', () => {
  test('/admin/stats, /admin/migrations, the maintenance plan and a dry run', async () => {
    const stats = (await call(adminUser, 'GET', '/admin/stats')).json();
    expect(stats.size.sizeBytes).toBeGreaterThan(0);
    expect(stats.tableSizes.map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['users', 'accounts', 'hardware', 'cards']),
    );
    const migrations = (await call(adminUser, 'GET', '/admin/migrations')).json();
    expect(migrations.pending).toEqual([]);
    expect(migrations.entries.map((e: { file: string; state: string }) => `${e.file}:${e.state}`)).toEqual(
      expect.arrayContaining(['0001_tables.sql:applied', '0002_demo_data.sql:applied', 'R__row_level_security.sql:applied']),
    );
    const plan = (await call(adminUser, 'GET', '/admin/maintenance/plan')).json();
    expect(Array.isArray(plan.steps)).toBe(true);
    const dry = (await call(adminUser, 'POST', '/admin/maintenance/run', {})).json();
    expect(dry.dryRun).toBe(true);
    expect(dry.results.every((r: { status: string }) => r.status === 'planned')).toBe(true);
    const run = (await call(adminUser, 'POST', '/admin/maintenance/run', { execute: true })).json();
    expect(run.dryRun).toBe(false);
    expect(run.failed).toBe(0);
    expect(run.results.length).toBe(dry.results.length);
  });

  test('the OpenAPI document lists the routes with their schemas', async () => {
    const doc = (await t.app.inject({ url: '/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/auth/sign-in', '/accounts', '/accounts/{id}', '/cards/{id}', '/admin/stats']),
    );
    expect(doc.paths['/accounts'].post.requestBody).toBeDefined();
    expect((await t.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
  });
});
