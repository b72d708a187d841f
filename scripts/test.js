#!/usr/bin/env node
// Runs the whole test suite twice: once with handlers' own inactivity timeouts,
// once with the inactivity timeout forced to 0 ("always suspend": every wait
// suspends and resumes by replay). Starts a private redis-server when REDIS_URL
// is unset (see test/setup/global-redis.ts). Prints "N passed, N failed".
// First type-checks the test code (test/tsconfig.json): vitest only strips types.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const typecheck = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'test/tsconfig.json'], {
  stdio: 'inherit',
});
if (typecheck.status !== 0) {
  console.error('\ntype errors in the test code (tsc -p test/tsconfig.json): fix them first; no test was run');
  process.exit(typecheck.status || 1);
}

const extra = process.argv.slice(2);
const modes = process.env.LK_TEST_MODES ? process.env.LK_TEST_MODES.split(',') : ['default', 'always-suspend'];
const dir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
let passed = 0;
let failed = 0;
let skipped = 0;
let exit = 0;
for (const mode of modes) {
  const out = join(dir, `${mode}.json`);
  const env = { ...process.env };
  if (mode === 'always-suspend') env.LATCHKEY_INACTIVITY_TIMEOUT = '0';
  else delete env.LATCHKEY_INACTIVITY_TIMEOUT;
  console.log(`\n=== test mode: ${mode}${mode === 'always-suspend' ? ' (LATCHKEY_INACTIVITY_TIMEOUT=0)' : ''} ===`);
  const r = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...extra],
    { stdio: 'inherit', env },
  );
  if (r.status !== 0) exit = r.status ?? 1;
  try {
    const report = JSON.parse(readFileSync(out, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    if (report.numTotalTests === 0) exit = exit || 1;
  } catch {
    failed += 1;
    exit = exit || 1;
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(exit);
