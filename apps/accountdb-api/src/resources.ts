import type { Pool } from '@accountdb/pool';
import { execute, type SqlFragment, sql } from '@accountdb/query';
import type { Rls, UserContext } from '@accountdb/rls';
import { type Static, type TObject, type TProperties, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticate } from './auth.js';
import { HttpError } from './http-errors.js';

const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const Name = Type.String({ minLength: 1, maxLength: 100 });
/** An owner other than yourself is refused by the policy's WITH CHECK (403), not by route code. */
const OwnerId = Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'owner; default: you' });
const Created = Type.String({ format: 'date-time' });

/** One user-owned table exposed as CRUD routes. Column names come from here, never from a request. */
interface ResourceSpec<C extends TProperties> {
  /** URL segment and table name. */
  name: 'accounts' | 'hardware' | 'cards';
  /** The item's fields besides `id`, `userId`, `createdAt`, each mapped to its column. */
  fields: C;
  /** Field → column for the writable fields. */
  columns: Record<keyof C & string, string>;
  /** Fields a POST must have. */
  required: (keyof C & string)[];
  /** `select` list producing the item's JSON shape. */
  selectList: SqlFragment;
}

const accounts: ResourceSpec<TProperties> = {
  name: 'accounts',
  fields: {
    name: Name,
    kind: Type.Union([Type.Literal('checking'), Type.Literal('savings'), Type.Literal('credit')]),
    balanceCents: Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
  },
  columns: { name: 'name', kind: 'kind', balanceCents: 'balance_cents', currency: 'currency' },
  required: ['name', 'kind'],
  selectList: sql`id, user_id as "userId", name, kind, balance_cents::float8 as "balanceCents", currency, created_at as "createdAt"`,
};

const hardware: ResourceSpec<TProperties> = {
  name: 'hardware',
  fields: {
    name: Name,
    kind: Type.Union([Type.Literal('laptop'), Type.Literal('phone'), Type.Literal('tablet'), Type.Literal('token')]),
    serialNumber: Type.String({ minLength: 1, maxLength: 64 }),
  },
  columns: { name: 'name', kind: 'kind', serialNumber: 'serial_number' },
  required: ['name', 'kind', 'serialNumber'],
  selectList: sql`id, user_id as "userId", name, kind, serial_number as "serialNumber", created_at as "createdAt"`,
};

const cards: ResourceSpec<TProperties> = {
  name: 'cards',
  fields: {
    accountId: Id,
    label: Name,
    brand: Type.Union([Type.Literal('visa'), Type.Literal('mastercard'), Type.Literal('amex')]),
    last4: Type.String({ pattern: '^[0-9]{4}$' }),
    expiresOn: Type.String({ format: 'date' }),
  },
  columns: { accountId: 'account_id', label: 'label', brand: 'brand', last4: 'last4', expiresOn: 'expires_on' },
  required: ['accountId', 'label', 'brand', 'last4', 'expiresOn'],
  selectList: sql`id, user_id as "userId", account_id as "accountId", label, brand, last4,
    to_char(expires_on, 'YYYY-MM-DD') as "expiresOn", created_at as "createdAt"`,
};

/** The resources the API serves. */
export const RESOURCES = [accounts, hardware, cards] as const;

const ErrorSchema = Type.Object({ statusCode: Type.Integer(), code: Type.String(), message: Type.String() });

/** The RLS context of an authenticated request: the token's user and role. */
export function userContext(request: FastifyRequest): UserContext {
  return { userId: request.user.sub, role: request.user.role };
}

/**
 * GET/POST `/<name>`, GET/PATCH/DELETE `/<name>/:id` for each resource, plus `GET /me`. No route
 * says `where user_id = ...`: each statement runs in the token user's RLS context and the policies
 * decide which rows exist for it. Reads are `rls.query` (one statement, one round trip); writes
 * open a scope with `rls.withUserContext` and run `@accountdb/query`'s `execute` inside it.
 */
export function registerResources(app: FastifyInstance, options: { pool: Pool; rls: Rls }): void {
  const { pool, rls } = options;
  const secured = { preHandler: authenticate };

  app.get(
    '/me',
    {
      ...secured,
      schema: {
        tags: ['users'],
        security: [{ bearerAuth: [] }],
        response: { 200: Type.Object({ id: Id, displayName: Type.String(), createdAt: Created }), 404: ErrorSchema },
      },
    },
    async (request) => {
      const { rows } = await rls.query(
        pool,
        userContext(request),
        sql`select id, display_name as "displayName", created_at as "createdAt" from users`,
      );
      if (!rows[0]) throw new HttpError(404, 'NOT_FOUND', 'user not found');
      return rows[0];
    },
  );

  for (const spec of RESOURCES) registerResource(app, spec, pool, rls, secured);
}

function registerResource(
  app: FastifyInstance,
  spec: ResourceSpec<TProperties>,
  pool: Pool,
  rls: Rls,
  secured: { preHandler: typeof authenticate },
): void {
  const table = sql.identifier(spec.name);
  const Item = Type.Object({ id: Id, userId: Id, ...spec.fields, createdAt: Created });
  const optional = Object.fromEntries(Object.entries(spec.fields).map(([k, v]) => [k, Type.Optional(v)]));
  const Create: TObject = Type.Object(
    {
      ...Object.fromEntries(Object.entries(spec.fields).map(([k, v]) => [k, spec.required.includes(k) ? v : Type.Optional(v)])),
      userId: Type.Optional(OwnerId),
    },
    { additionalProperties: false },
  );
  const Update: TObject = Type.Object(
    { ...optional, userId: Type.Optional(OwnerId) },
    { additionalProperties: false, minProperties: 1 },
  );
  const Params = Type.Object({ id: Id });
  const ListQuery = Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  });
  const tags = [spec.name];
  const security = [{ bearerAuth: [] }];
  const notFound = () => new HttpError(404, 'NOT_FOUND', `${spec.name} item not found`);
  /** Writable fields of a body as (column, value) pairs; `userId` is handled apart. */
  const assignments = (body: Record<string, unknown>) =>
    Object.entries(body)
      .filter(([key]) => key !== 'userId')
      .map(([key, value]) => [sql.identifier(spec.columns[key] as string), value] as const);

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    `/${spec.name}`,
    { ...secured, schema: { tags, security, querystring: ListQuery, response: { 200: Type.Array(Item) } } },
    async (request) => {
      const { limit, offset } = request.query;
      const { rows } = await rls.query(
        pool,
        userContext(request),
        sql`select ${spec.selectList} from ${table} order by id limit ${limit} offset ${offset}`,
      );
      return rows;
    },
  );

  app.get<{ Params: Static<typeof Params> }>(
    `/${spec.name}/:id`,
    { ...secured, schema: { tags, security, params: Params, response: { 200: Item, 404: ErrorSchema } } },
    async (request) => {
      const { rows } = await rls.query(
        pool,
        userContext(request),
        sql`select ${spec.selectList} from ${table} where id = ${request.params.id}`,
      );
      if (!rows[0]) throw notFound();
      return rows[0];
    },
  );

  app.post<{ Body: Record<string, unknown> }>(
    `/${spec.name}`,
    { ...secured, schema: { tags, security, body: Create, response: { 201: Item, 403: ErrorSchema, 409: ErrorSchema } } },
    async (request, reply) => {
      const pairs = assignments(request.body);
      const owner = (request.body.userId as number | undefined) ?? null;
      const row = await rls.withUserContext(pool, userContext(request), (tx) =>
        execute(
          tx,
          sql`insert into ${table} (user_id, ${sql.join(pairs.map(([column]) => column))})
              values (coalesce(${owner}::integer, app.current_user_id()), ${sql.join(pairs.map(([, value]) => value))})
              returning ${spec.selectList}`,
          { fetch: 'one' },
        ),
      );
      return reply.code(201).send(row);
    },
  );

  app.patch<{ Params: Static<typeof Params>; Body: Record<string, unknown> }>(
    `/${spec.name}/:id`,
    {
      ...secured,
      schema: {
        tags,
        security,
        params: Params,
        body: Update,
        response: { 200: Item, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema },
      },
    },
    async (request) => {
      const sets = assignments(request.body).map(([column, value]) => sql`${column} = ${value}`);
      if (request.body.userId !== undefined) sets.push(sql`user_id = ${request.body.userId}`);
      const row = await rls.withUserContext(pool, userContext(request), (tx) =>
        execute(tx, sql`update ${table} set ${sql.join(sets)} where id = ${request.params.id} returning ${spec.selectList}`, {
          fetch: 'one',
        }),
      );
      if (!row) throw notFound();
      return row;
    },
  );

  app.delete<{ Params: Static<typeof Params> }>(
    `/${spec.name}/:id`,
    { ...secured, schema: { tags, security, params: Params, response: { 204: Type.Null(), 404: ErrorSchema } } },
    async (request, reply) => {
      const deleted = await rls.withUserContext(pool, userContext(request), (tx) =>
        execute(tx, sql`delete from ${table} where id = ${request.params.id}`, { fetch: 'none' }),
      );
      if (deleted === 0) throw notFound();
      return reply.code(204).send();
    },
  );
}
