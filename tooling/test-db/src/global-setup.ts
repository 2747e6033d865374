import { exportSharedServer, startAdminServer } from './source.js';

/** vitest globalSetup: one PostgreSQL for the whole run; every test file gets its own database on it. */
export default async function setup(): Promise<() => Promise<void>> {
  const server = await startAdminServer();
  exportSharedServer(server);
  return () => server.stop();
}
