#!/usr/bin/env node
// Run the whole suite N times in a row and list every test that failed, with how often.
// A flaky test is a defect: use this before claiming a race is fixed.
//
//   node scripts/repeat-tests.mjs [runs=10] [-- extra vitest args, e.g. --project pool]
//
// Expects a built tree (`pnpm build`); each run is `pnpm exec vitest run` with a JSON report.
// Exit code: 0 when every run passed, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const own = dash === -1 ? args : args.slice(0, dash);
const extra = dash === -1 ? [] : args.slice(dash + 1);
const runs = own[0] === undefined ? 10 : Number(own[0]);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node scripts/repeat-tests.mjs [runs >= 1] [-- vitest args]');
  process.exit(2);
}

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'accountdb-repeat-'));
/** "file > test name" → run numbers it failed in */
const failures = new Map();
const summary = [];
try {
  for (let run = 1; run <= runs; run++) {
    const report = join(dir, `run-${run}.json`);
    const started = Date.now();
    const child = spawnSync(
      'pnpm',
      ['exec', 'vitest', 'run', '--reporter=dot', '--reporter=json', `--outputFile.json=${report}`, ...extra],
      { cwd: root, encoding: 'utf8', env: { ...process.env, ACCOUNTDB_TEST_QUIET: '1' }, maxBuffer: 64 * 1024 * 1024 },
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    let failed = [];
    let total = 0;
    let unhandled = 0;
    try {
      const json = JSON.parse(readFileSync(report, 'utf8'));
      total = json.numTotalTests;
      for (const file of json.testResults) {
        const rel = file.name.startsWith(root) ? file.name.slice(root.length) : file.name;
        if (file.status === 'failed' && file.assertionResults.every((t) => t.status !== 'failed')) {
          failed.push(`${rel} (file: ${String(file.message).split('\n')[0]})`);
        }
        for (const t of file.assertionResults) {
          if (t.status === 'failed') failed.push(`${rel} > ${t.fullName}`);
        }
      }
    } catch {
      failed = ['(no JSON report: vitest did not finish)'];
    }
    // Unhandled errors fail the run without failing a test; vitest prints them to its output.
    const out = `${child.stdout}\n${child.stderr}`;
    const m = out.match(/(\d+) unhandled (?:errors?|rejections?)/i);
    if (m) unhandled = Number(m[1]);
    if (child.status !== 0 && failed.length === 0) {
      failed.push(unhandled ? `(${unhandled} unhandled error(s); see vitest output)` : `(vitest exited ${child.status})`);
    }
    for (const name of failed) failures.set(name, [...(failures.get(name) ?? []), run]);
    const ok = child.status === 0;
    summary.push(ok);
    console.log(`run ${run}/${runs}: ${ok ? 'PASS' : 'FAIL'} — ${total} tests, ${failed.length} failing, ${seconds}s`);
    if (!ok) {
      for (const name of failed) console.log(`    ✗ ${name}`);
      const tail = out
        .split('\n')
        .filter((l) => /unhandled|Error:|FAIL/i.test(l))
        .slice(0, 20);
      for (const line of tail) console.log(`      | ${line}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const passed = summary.filter(Boolean).length;
console.log(`\n${passed}/${runs} runs passed`);
if (failures.size > 0) {
  console.log('failures by test (runs):');
  for (const [name, list] of [...failures].sort((a, b) => b[1].length - a[1].length)) {
    console.log(`  ${list.length}× ${name}  [${list.join(', ')}]`);
  }
}
process.exit(passed === runs ? 0 : 1);
