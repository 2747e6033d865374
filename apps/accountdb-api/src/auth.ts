import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import type { Pool } from '@accountdb/pool';
import { execute, sql } from '@accountdb/query';
import fastifyJwt from '@fastify/jwt';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './http-errors.js';

/** Application roles a token may carry; the same list is `createRls`'s allow-list. */
export const APP_ROLES = ['user', 'admin'] as const;
export type AppRole = (typeof APP_ROLES)[number];

/** What a signed token says: the user's id (`sub`) and role. */
export interface TokenClaims {
  sub: number;
  role: AppRole;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims;
    user: TokenClaims;
  }
}

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 } as const;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64), as stored in `user_logins.password_hash`. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Compare in constant time. A malformed hash is a mismatch, never an exception. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 64 * 1024 * 1024,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

// Verified when the e-mail is unknown, so a wrong e-mail costs as much as a wrong password.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export const SignInBody = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);
export const TokenResponse = Type.Object({
  token: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'seconds' }),
  userId: Type.Integer(),
  role: Type.Union(APP_ROLES.map((r) => Type.Literal(r))),
});

export interface AuthOptions {
  /** The login role's pool: sign-in calls `app.sign_in_lookup`, the only way to read a password hash. */
  pool: Pool;
  /** HMAC secret for HS256 tokens (`JWT_SECRET`), at least 32 characters. */
  secret: string;
  /** Token lifetime, seconds. Default 3,600. */
  tokenTtlSeconds?: number;
}

/**
 * `POST /auth/sign-in` and the `authenticate`/`requireAdmin` hooks. Tokens are HS256, checked for
 * signature and expiry by @fastify/jwt; anything else is a 401.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const expiresIn = options.tokenTtlSeconds ?? 3_600;
  await app.register(fastifyJwt, {
    secret: options.secret,
    sign: { algorithm: 'HS256', expiresIn },
    verify: { algorithms: ['HS256'] },
  });

  app.post<{ Body: Static<typeof SignInBody> }>(
    '/auth/sign-in',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in with e-mail and password; returns a bearer token',
        body: SignInBody,
        response: { 200: TokenResponse },
      },
    },
    async (request) => {
      const login = await execute(
        options.pool,
        sql`select user_id, password_hash, role from app.sign_in_lookup(${request.body.email})`,
        { fetch: 'one' },
      );
      const ok = await verifyPassword(request.body.password, (login?.password_hash as string | undefined) ?? DUMMY_HASH);
      if (!login || !ok) throw new HttpError(401, 'UNAUTHORIZED', 'wrong e-mail or password');
      const claims: TokenClaims = { sub: login.user_id as number, role: login.role as AppRole };
      return { token: app.jwt.sign(claims), tokenType: 'Bearer' as const, expiresIn, userId: claims.sub, role: claims.role };
    },
  );
}

/** preHandler: a valid bearer token, or 401. Sets `request.user`. */
export async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  try {
    await request.jwtVerify();
  } catch {
    throw new HttpError(401, 'UNAUTHORIZED', 'missing, malformed, forged or expired token');
  }
  const { sub, role } = request.user;
  if (!Number.isInteger(sub) || !(APP_ROLES as readonly string[]).includes(role)) {
    throw new HttpError(401, 'UNAUTHORIZED', 'token claims are not ours');
  }
}

/** preHandler after {@link authenticate}: the token's role is `admin`, or 403. */
export async function requireAdmin(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.user.role !== 'admin') throw new HttpError(403, 'FORBIDDEN', 'admin role required');
}
