#!/usr/bin/env node
// `prisma generate` for the tests' client, with nothing fetched at run time. Prisma 7's CLI checks for
// its schema engine (a native binary it downloads from Prisma's own host, not the npm registry) before
// any command, although `generate` of the `prisma-client` generator never runs it (it parses the schema
// with WebAssembly shipped in the npm package). PRISMA_SCHEMA_ENGINE_BINARY names an engine, so the CLI
// skips the download; /bin/false makes any attempt to run it fail loudly instead of doing something.
// CHECKPOINT_DISABLE turns off the CLI's update check (a network call).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cli = require.resolve('prisma/build/index.js');
const r = spawnSync(process.execPath, [cli, 'generate', '--schema', 'prisma/schema.prisma'], {
  stdio: 'inherit',
  env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
});
process.exit(r.status ?? 1);
