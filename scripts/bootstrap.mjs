#!/usr/bin/env node
// The README's quick start needs only Node >= 20 and npm: `npm start` and `npm test` land here.
// We use the pnpm on PATH when it is the pinned version, else run that version through npx
// (corepack's signature check fails against some registries), install from the lockfile, then run.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).packageManager.split('@')[1];

function pnpm() {
  const onPath = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim() === pinned) return ['pnpm'];
  return ['npx', '--yes', `pnpm@${pinned}`];
}

/**
 * Run a command in the repo root. The child gets its own process group and we forward SIGINT/SIGTERM
 * ourselves: a terminal's Ctrl-C reaches npm, the shell and us at once (and npm forwards it again), so
 * repeats within a second are one signal — the app treats a real second signal as "force exit".
 */
function run(argv) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: root, stdio: 'inherit', detached: true });
    const last = {};
    const forward = (signal) => {
      const now = Date.now();
      if (now - (last[signal] ?? 0) < 1000) return;
      last[signal] = now;
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function step(argv) {
  const code = await run(argv);
  if (code !== 0) process.exit(code);
}

const [command, ...rest] = process.argv.slice(2);
const pm = pnpm();
await step([...pm, 'install', '--frozen-lockfile']);
if (command === 'start') {
  await step([...pm, 'exec', 'turbo', 'run', 'build', '--filter=@accountdb/api...']);
  // Run the app directly (not through pnpm) so Ctrl-C reaches it alone and its clean exit code is ours.
  process.exit(await run(['node', 'apps/accountdb-api/dist/main.js', ...rest]));
} else if (command === 'test') {
  await step([...pm, 'exec', 'turbo', 'run', 'build']);
  process.exit(await run([...pm, 'exec', 'vitest', 'run', ...rest]));
} else {
  console.error('usage: node scripts/bootstrap.mjs start|test [args]');
  process.exit(2);
}
