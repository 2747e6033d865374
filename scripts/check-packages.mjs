#!/usr/bin/env node
// Packaging checks for every published package: publint --strict, attw --pack (types resolve
// for ESM and CJS consumers), and the root LICENSE copied unchanged beside it (npm and pnpm pack a
// package's LICENSE whatever `files` says, but only from the package's own folder). Run after `pnpm build`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = readdirSync(join(root, 'packages'))
  .map((d) => join(root, 'packages', d))
  .filter((d) => existsSync(join(d, 'package.json')) && !JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).private);

let failed = 0;
const license = readFileSync(join(root, 'LICENSE'), 'utf8');
for (const dir of dirs) {
  if (!existsSync(join(dir, 'LICENSE')) || readFileSync(join(dir, 'LICENSE'), 'utf8') !== license) {
    failed++;
    console.error(`✗ ${dir}/LICENSE is missing or differs from the root LICENSE (cp LICENSE ${dir}/)`);
  }
  for (const argv of [
    ['publint', '--strict'],
    ['attw', '--pack', '.', '--profile', 'node16'],
  ]) {
    const r = spawnSync('pnpm', ['exec', ...argv], { cwd: dir, stdio: 'inherit' });
    if (r.status !== 0) {
      failed++;
      console.error(`✗ ${argv[0]} failed in ${dir}`);
    }
  }
}
console.log(failed === 0 ? `package checks passed for ${dirs.length} packages` : `${failed} package check(s) failed`);
process.exit(failed === 0 ? 0 : 1);
