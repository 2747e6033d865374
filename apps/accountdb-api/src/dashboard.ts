import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

const PUBLIC_DIR = new URL('../public/', import.meta.url);
const require = createRequire(import.meta.url);

/** File name → [content type, path]. Nothing else is served: no directory listing, no path from the URL. */
const ASSETS: Record<string, [type: string, path: string]> = {
  'dashboard.js': ['text/javascript; charset=utf-8', new URL('dashboard.js', PUBLIC_DIR).pathname],
  'dashboard.css': ['text/css; charset=utf-8', new URL('dashboard.css', PUBLIC_DIR).pathname],
  // uPlot, from its npm package: the page needs no CDN and works offline.
  'uPlot.iife.min.js': ['text/javascript; charset=utf-8', require.resolve('uplot/dist/uPlot.iife.min.js')],
  'uPlot.min.css': ['text/css; charset=utf-8', require.resolve('uplot/dist/uPlot.min.css')],
};

/**
 * `GET /dashboard` and its assets. The page holds no data: it signs in as an admin and reads the
 * admin JSON routes with the token, so what it shows is exactly what those routes return.
 */
export function registerDashboard(app: FastifyInstance): void {
  const page = readFileSync(new URL('dashboard.html', PUBLIC_DIR), 'utf8');
  const files = new Map(Object.entries(ASSETS).map(([name, [type, path]]) => [name, { type, body: readFileSync(path) }]));
  const headers = {
    'cache-control': 'no-cache',
    // Everything comes from this origin; no inline script, no eval.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
  };
  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) =>
    reply.headers(headers).type('text/html; charset=utf-8').send(page),
  );
  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const file = files.get(request.params.file);
    if (!file) return reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', message: 'no such asset' });
    return reply.headers(headers).type(file.type).send(file.body);
  });
}
