import type { Logger, Pool } from '@accountdb/pool';
import { packageLogger, withTimeout } from '@accountdb/pool/internal';
import { describeError, HEALTH_JSON, type HealthDocument, type HealthStatus, toDocument } from './document.js';
import { checkResolved, keyOf } from './health.js';
import { type HealthHandlerOptions, resolveHealthOptions } from './options.js';
import { assertPool } from './pool-health.js';

/** The request fields the handler reads (node:http `IncomingMessage`, Express `req`, Fastify `request.raw`). */
export interface HealthRequest {
  url?: string | undefined;
  method?: string | undefined;
}

/** The response methods the handler calls (node:http `ServerResponse`, Express `res`, Fastify `reply.raw`). */
export interface HealthResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** Probe kinds, as the last path segment of the request URL. */
export type ProbeKind = 'live' | 'ready' | 'startup';

/** A `(req, res)` handler routing on the last path segment, plus one handler per probe and the documents themselves. */
export interface HealthHandler {
  (req: HealthRequest, res: HealthResponse): Promise<void>;
  live(req: HealthRequest, res: HealthResponse): Promise<void>;
  ready(req: HealthRequest, res: HealthResponse): Promise<void>;
  startup(req: HealthRequest, res: HealthResponse): Promise<void>;
  /** The document a probe would serve. */
  report(kind: ProbeKind): Promise<HealthDocument>;
}

/** Liveness: the process runs and its event loop answers. Never touches the database. */
export function livenessDocument(): HealthDocument {
  return toDocument({
    'process:uptime': [
      {
        componentType: 'system',
        status: 'pass',
        observedValue: Math.round(process.uptime()),
        observedUnit: 's',
        time: new Date().toISOString(),
      },
    ],
  });
}

/**
 * Serve `live`, `ready` and `startup` as `application/health+json`: HTTP 200 for pass/warn, 503 for
 * fail. `live` never touches the database (a down database must not restart every pod); `ready` is
 * {@link checkHealth} with these options (coalesced, bounded); `startup` passes once `options.startup`
 * has returned true (bounded by `timeoutMs` per call) and from then on. Options are validated now.
 */
export function createHealthHandler(pool: Pool, options: HealthHandlerOptions = {}): HealthHandler {
  assertPool(pool);
  const resolved = resolveHealthOptions(options, true);
  const key = keyOf({ ...options, logger: undefined });
  const log: Logger = packageLogger(options.logger, '@accountdb/health');
  let started = resolved.startup === undefined;
  let starting: Promise<HealthDocument> | undefined;
  let lastReady: HealthStatus | undefined;

  const startupDocument = (): Promise<HealthDocument> => {
    if (started) return Promise.resolve(startupResult('pass'));
    starting ??= evaluateStartup(resolved.startup!, resolved.timeoutMs).then((doc) => {
      starting = undefined;
      if (doc.status === 'pass') {
        started = true;
        log.info('startup condition met');
      }
      return doc;
    });
    return starting;
  };

  const report = async (kind: ProbeKind): Promise<HealthDocument> => {
    if (kind === 'live') return livenessDocument();
    if (kind === 'startup') return startupDocument();
    const doc = await checkResolved(pool, resolved, key);
    if (doc.status !== lastReady) {
      if (lastReady !== undefined || doc.status !== 'pass')
        log[doc.status === 'fail' ? 'warn' : 'info']({ status: doc.status, output: doc.output }, 'readiness changed');
      lastReady = doc.status;
    }
    return doc;
  };

  const serve = (kind: ProbeKind) => async (req: HealthRequest, res: HealthResponse) => {
    send(req, res, await report(kind));
  };
  const handler = (async (req: HealthRequest, res: HealthResponse) => {
    const kind = probeOf(req.url);
    if (kind) return serve(kind)(req, res);
    send(
      req,
      res,
      { status: 'fail', output: 'unknown health endpoint: use .../live, .../ready or .../startup', checks: {} },
      404,
    );
  }) as HealthHandler;
  handler.live = serve('live');
  handler.ready = serve('ready');
  handler.startup = serve('startup');
  handler.report = report;
  return handler;
}

function probeOf(url: string | undefined): ProbeKind | undefined {
  const path = (url ?? '').split('?')[0] ?? '';
  const last = path.replace(/\/+$/, '').split('/').pop();
  return last === 'live' || last === 'ready' || last === 'startup' ? last : undefined;
}

function send(req: HealthRequest, res: HealthResponse, doc: HealthDocument, statusCode?: number): void {
  res.statusCode = statusCode ?? (doc.status === 'fail' ? 503 : 200);
  res.setHeader('content-type', `${HEALTH_JSON}; charset=utf-8`);
  res.setHeader('cache-control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(doc));
}

function startupResult(status: HealthStatus, output?: string): HealthDocument {
  const time = new Date().toISOString();
  return toDocument({
    'startup:condition': [
      { componentType: 'component', status, observedValue: status === 'pass', time, ...(output ? { output } : {}) },
    ],
  });
}

async function evaluateStartup(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<HealthDocument> {
  try {
    const result = await withTimeout(Promise.resolve().then(condition), timeoutMs, () => 'timeout' as const);
    if (result === true) return startupResult('pass');
    return startupResult(
      'fail',
      result === 'timeout' ? `startup condition did not answer within ${timeoutMs} ms` : 'startup condition not met yet',
    );
  } catch (err) {
    return startupResult('fail', `startup condition threw: ${describeError(err)}`);
  }
}
