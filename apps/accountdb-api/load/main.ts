// Load run (a program, not a test): `pnpm --filter @accountdb/api load` after `pnpm build`.
// Starts PostgreSQL (the test harness's embedded one, or LOAD_DATABASE_URL's server), the built app
// as a child process on a fresh database, signs in LOAD_USERS users (default 50) and runs autocannon
// with LOAD_CONNECTIONS (100) connections for LOAD_DURATION seconds (30) against the user routes.
// Every response body is checked for rows of another user. Exit code 1 on any error or foreign row.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, freePort, sharedAdminServer } from '@accountdb/test-db';
import autocannon from 'autocannon';

const USERS = Number(process.env.LOAD_USERS ?? 50);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 100);
const DURATION = Number(process.env.LOAD_DURATION ?? 30);
const MAIN = join(import.meta.dirname, '..', 'dist', 'main.js');
const DEMO_HASH = 'scrypt$16384$8$1$5k3WCbx90COCjwHau0Ak4g==$urKkf18l05LOpxt7gvtpjolUIMlmK79adcNVIbdOJRQ='; // "accountdb-demo"

interface User {
  id: number;
  token: string;
  accountIds: number[];
}

if (!existsSync(MAIN)) {
  console.error(`${MAIN} is missing: run "pnpm turbo run build --filter=@accountdb/api..." first`);
  process.exit(2);
}

const server = process.env.LOAD_DATABASE_URL ? undefined : await sharedAdminServer();
const db = await createTestDatabase(process.env.LOAD_DATABASE_URL ?? server?.adminUrl);
let app: ChildProcess | undefined;
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const loginRole = `load_${randomBytes(4).toString('hex')}`;
  app = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: db.url,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      API_DB_USER: loginRole,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      ...(process.env.DB_MAX_CONNECTIONS ? { DB_MAX_CONNECTIONS: process.env.DB_MAX_CONNECTIONS } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const started = performance.now();
  while ((await fetch(`${base}/health/ready`).catch(() => undefined))?.status !== 200) {
    if (app.exitCode !== null) throw new Error(`the app exited with ${app.exitCode} during start-up`);
    if (performance.now() - started > 120_000) throw new Error('the app did not become ready within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`app ready in ${Math.round(performance.now() - started)} ms (migrations and checks included)`);

  // More users than the demo's five, each with rows of their own, created as the tables' owner.
  await db.admin(
    `with new_users as (
       insert into users (display_name) select 'Load user ' || g from generate_series(1, $1::int) g returning id, display_name
     )
     insert into user_logins (user_id, email, password_hash)
     select id, 'load' || split_part(display_name, ' ', 3) || '@example.com', $2 from new_users`,
    [Math.max(0, USERS - 4), DEMO_HASH],
  );
  await db.admin(`insert into accounts (user_id, name, kind) select id, 'Load account ' || g, 'checking'
                    from users cross join generate_series(1, 2) g where display_name like 'Load user %'`);
  await db.admin(`insert into hardware (user_id, name, kind, serial_number) select id, 'Load laptop', 'laptop', 'LOAD-' || id
                    from users where display_name like 'Load user %'`);
  await db.admin(`insert into cards (user_id, account_id, label, brand, last4, expires_on)
                    select user_id, id, 'Load card', 'visa', '1234', date '2030-01-01' from accounts`);
  const { rows: logins } = await db.admin(`select email from user_logins where role = 'user' order by user_id limit $1`, [USERS]);
  const users: User[] = await Promise.all(
    logins.map(async ({ email }) => {
      const response = await fetch(`${base}/auth/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: 'accountdb-demo' }),
      });
      if (response.status !== 200) throw new Error(`sign-in of ${email}: HTTP ${response.status}`);
      const { token, userId } = (await response.json()) as { token: string; userId: number };
      const accounts = (await (await fetch(`${base}/accounts`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        id: number;
      }[];
      return { id: userId, token, accountIds: accounts.map((a) => a.id) };
    }),
  );
  console.log(`${users.length} users signed in; ${CONNECTIONS} connections for ${DURATION} s against the user routes`);

  // The pool's open connections, sampled from /metrics during the run.
  let peakOpen = 0;
  let poolMax = 0;
  const sampler = setInterval(async () => {
    const text = await (await fetch(`${base}/metrics`)).text().catch(() => '');
    let open = 0;
    for (const line of text.split('\n')) {
      const m = /^accountdb_pool_connections\{state="(idle|active|opening)"\} (\d+)/.exec(line);
      if (m) open += Number(m[2]);
      const max = /^accountdb_pool_max_connections (\d+)/.exec(line);
      if (max) poolMax = Number(max[1]);
    }
    peakOpen = Math.max(peakOpen, open);
  }, 250);

  let checked = 0;
  let foreignRows = 0;
  let badBodies = 0;
  const paths = (u: User) => ['/accounts', '/hardware', '/cards', '/me', `/accounts/${u.accountIds[0]}`];
  const result = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        setupRequest: (request, context) => {
          const user = users[Math.floor(Math.random() * users.length)] as User;
          context.user = user;
          const options = paths(user);
          return {
            ...request,
            method: 'GET',
            path: options[Math.floor(Math.random() * options.length)],
            headers: { authorization: `Bearer ${user.token}` },
          };
        },
        onResponse: (status, body, context) => {
          if (status !== 200) return; // counted by autocannon as non-2xx
          const user = context.user as User;
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch {
            badBodies++;
            return;
          }
          checked++;
          const rows = Array.isArray(parsed) ? parsed : [parsed];
          for (const row of rows as { userId?: number; id?: number }[]) {
            const owner = row.userId ?? row.id; // GET /me returns the user itself
            if (owner !== user.id) foreignRows++;
          }
        },
      },
    ],
  });
  clearInterval(sampler);

  const errors = result.errors + result.timeouts + result.non2xx + badBodies;
  console.log('');
  console.log(
    `requests:          ${result.requests.total} (${Math.round(result.requests.average)} req/s average), ${checked} bodies checked`,
  );
  console.log(
    `errors:            ${errors} (connection errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}, bad bodies ${badBodies})`,
  );
  console.log(`foreign rows:      ${foreignRows}`);
  console.log(`latency:           p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`);
  console.log(`pool (login role): at most ${peakOpen} connections open (maxConnections ${poolMax})`);
  console.log(
    `machine:           ${(await import('node:os'))
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} load average, ${(await import('node:os')).cpus().length} CPUs (client, app and PostgreSQL share them)`,
  );
  process.exitCode = errors === 0 && foreignRows === 0 ? 0 : 1;
} finally {
  if (app && app.exitCode === null) {
    const exited = new Promise((resolve) => app?.once('exit', resolve));
    app.kill('SIGTERM');
    await exited;
  }
  await db.drop();
  await server?.stop();
}
