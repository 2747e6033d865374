// Every README's ts/js code blocks, as a user would run them: type-checked by tsc against the built
// packages (resolved through this package's node_modules, the way an installed package resolves),
// then run by node as plain JavaScript against a fresh copy of the sample database.
// Usage: pnpm test:readme [path filter...]   (from the repo root; builds first)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, startAdminServer } from '@accountdb/test-db';
import pg from 'pg';
import ts from 'typescript';
import { type Example, extractExamples } from './extract-examples.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = fileURLToPath(new URL('../', import.meta.url));
const outDir = join(here, '.examples');
const sampleDatabaseSql = readFileSync(join(here, 'sample-database.sql'), 'utf8');
const require = createRequire(import.meta.url);
const EXAMPLE_TIMEOUT_MS = 60_000;

function readmes(): string[] {
  const found = ['README.md'];
  // Guides under docs/ are READMEs too: their blocks run the same way.
  if (existsSync(join(root, 'docs')))
    for (const name of readdirSync(join(root, 'docs')).sort()) if (name.endsWith('.md')) found.push(join('docs', name));
  for (const dir of ['packages', 'apps', 'tooling']) {
    if (!existsSync(join(root, dir))) continue;
    for (const name of readdirSync(join(root, dir)).sort()) {
      const path = join(dir, name, 'README.md');
      if (existsSync(join(root, path))) found.push(path);
    }
  }
  return found;
}

/** `packages/pool/README.md` block at line 9 → `packages-pool-README-L9`. */
function slug(e: Example): string {
  return `${e.readme.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-')}-L${e.line}`;
}

/** Type-check every block in one tsc run; errors are reported at their README line. */
function typecheck(examples: Example[]): string[] {
  const files = examples.map((e) => `${slug(e)}.ts`);
  for (const [i, e] of examples.entries()) writeFileSync(join(outDir, files[i]!), `${e.code}\n`);
  writeFileSync(
    join(outDir, 'tsconfig.json'),
    JSON.stringify(
      {
        // What a consumer's strict ESM project would use; every block is a module of its own.
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          moduleDetection: 'force',
          strict: true,
          types: ['node'],
          skipLibCheck: true,
          noEmit: true,
        },
        files,
      },
      null,
      2,
    ),
  );
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', outDir, '--pretty', 'false'], {
    encoding: 'utf8',
  });
  if (tsc.status === 0) return [];
  const byFile = new Map(examples.map((e, i) => [files[i]!, e]));
  return `${tsc.stdout}${tsc.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(l);
      const e = m && byFile.get(m[1]!.split('/').pop()!);
      return e ? `${e.readme}:${e.line + Number(m[2])}:${m[3]} ${m[4]}` : l;
    });
}

/** A `ts` block with its types removed; a `js` block exactly as written. */
function javascript(e: Example): string {
  if (e.language === 'js') return e.code;
  return ts.transpileModule(e.code, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
    fileName: `${slug(e)}.ts`,
  }).outputText;
}

/** Private tooling packages export TypeScript source: a block importing one runs with tsx's loader. */
function needsTsx(code: string): boolean {
  for (const [, name] of code.matchAll(/from\s+['"](@accountdb\/[^'"/]+)/g)) {
    const manifest = join(here, 'node_modules', name!, 'package.json');
    if (existsSync(manifest) && /\.tsx?$/.test(JSON.parse(readFileSync(manifest, 'utf8')).main ?? '')) return true;
  }
  return false;
}

interface RunResult {
  ok: boolean;
  output: string;
  ms: number;
}

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: outDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n(did not exit within ${EXAMPLE_TIMEOUT_MS / 1000} s: a pool left open? killed)`;
      child.kill('SIGKILL');
    }, EXAMPLE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) output += `\n(exit ${code ?? signal})`;
      resolve({ ok: code === 0, output, ms: Date.now() - started });
    });
  });
}

/** A fresh sample database; the block runs as the application role, with the connection in the environment. */
async function runExample(e: Example, adminUrl: string): Promise<RunResult> {
  const file = join(outDir, `${slug(e)}.mjs`);
  writeFileSync(file, javascript(e));
  const db = await createTestDatabase(adminUrl);
  try {
    await db.admin(sampleDatabaseSql);
    const app = await db.createRestrictedRole();
    const role = pg.escapeIdentifier(app.user);
    await db.admin(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
      GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}; GRANT CREATE ON SCHEMA public TO ${role}`);
    // Only our connection settings: a developer's own DB_*/PG*/DATABASE_URL must not leak in.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(DB_|PG|DATABASE_URL$|MIGRATION_DATABASE_URL$)/.test(k)),
    );
    Object.assign(env, {
      DATABASE_URL: app.url,
      DB_HOST: app.host,
      DB_PORT: String(app.port),
      DB_NAME: app.database,
      DB_USER: app.user,
      DB_PASS: app.password,
      MIGRATION_DATABASE_URL: db.url,
    });
    const loader = needsTsx(e.code) ? ['--import', import.meta.resolve('tsx')] : [];
    return await runNode([...loader, file], env);
  } finally {
    await db.drop();
  }
}

const filters = process.argv.slice(2);
const problems: string[] = [];
const all: Example[] = [];
for (const readme of readmes()) {
  if (filters.length > 0 && !filters.some((f) => readme.includes(f))) continue;
  const found = extractExamples(readme, readFileSync(join(root, readme), 'utf8'));
  problems.push(...found.problems);
  all.push(...found.examples);
}
const code = all.filter((e) => e.language);
const checked = code.filter((e) => e.mode !== 'skip');
const runnable = code.filter((e) => e.mode === 'run');
console.log(
  `README examples on Node ${process.version}: ${code.length} ts/js blocks in ${new Set(all.map((e) => e.readme)).size} READMEs ` +
    `(${runnable.length} run, ${checked.length - runnable.length} type-check only, ${code.length - checked.length} skipped); ` +
    `${all.length - code.length} other blocks (sh, sql, output) are not run`,
);
for (const e of code.filter((x) => x.mode !== 'run')) console.log(`  ${e.mode}: ${e.readme}:${e.line} — ${e.reason}`);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const typeErrors = typecheck(checked);
console.log(typeErrors.length === 0 ? '✓ tsc: no errors' : `✗ tsc:\n${typeErrors.map((l) => `  ${l}`).join('\n')}`);
if (typeErrors.some((l) => l.includes("Cannot find module '@accountdb/"))) {
  console.log('  (a new package? add it to tooling/readme-examples/package.json devDependencies as workspace:*)');
}

const failed: string[] = [];
if (runnable.length > 0) {
  const server = await startAdminServer();
  try {
    for (const e of runnable) {
      const where = `${e.readme}:${e.line}`;
      const result = await runExample(e, server.adminUrl);
      const output = result.output.trimEnd();
      console.log(
        `${result.ok ? '✓' : '✗'} ${where} (${e.language}, ${result.ms} ms)${output ? `\n${output.replace(/^/gm, '    ')}` : ''}`,
      );
      if (!result.ok) failed.push(where);
    }
  } finally {
    await server.stop();
  }
}

for (const p of problems) console.log(`✗ ${p}`);
const ok = problems.length === 0 && typeErrors.length === 0 && failed.length === 0;
console.log(
  ok
    ? `README examples passed on Node ${process.version} (files in ${relative(root, outDir)})`
    : `README examples FAILED on Node ${process.version}: ${typeErrors.length} type error line(s), ${failed.length} failed run(s)` +
        `${failed.length ? ` (${failed.join(', ')})` : ''}, ${problems.length} marker problem(s)`,
);
process.exit(ok ? 0 : 1);
