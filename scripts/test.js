#!/usr/bin/env node
// Runs the test suite once, as vitest projects (vitest.config.ts): `unit` (no Redis), then
// `redis` (handlers' own inactivity timeouts), then `redis-suspend` (the same files with
// LATCHKEY_INACTIVITY_TIMEOUT=0, "always suspend": every wait suspends and resumes by replay);
// `redis-cluster` (the same files on a 3-master Redis Cluster) when LK_TEST_MODES names `cluster`.
// Each standalone Redis project starts a private redis-server when REDIS_URL is unset (see
// test/setup/global-redis.ts); the cluster project starts a private cluster when
// REDIS_CLUSTER_NODES is unset (test/setup/global-cluster.ts). Prints "N passed, N failed";
// fails when no test ran.
// `npm test` runs `npm run check` (build, type-check of the tests, lint...) first.
//
// Extra arguments go to vitest: `node scripts/test.js --project redis test/basic.redis.test.ts`.
// LK_TEST_MODES=default|always-suspend|cluster (comma-separated) keeps the unit project and only
// the named Redis modes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PROJECT_OF_MODE = {
  default: 'redis',
  'always-suspend': 'redis-suspend',
  cluster: 'redis-cluster',
};
// The modes `npm test` (and so .ci/run) runs when LK_TEST_MODES is unset. The cluster pass is not
// among them yet: with it the suite took about 25 minutes on a 2-core machine, over CI's 20
// (run it with LK_TEST_MODES=default,always-suspend,cluster, or `--project redis-cluster`).
const DEFAULT_MODES = 'default,always-suspend';
const extra = process.argv.slice(2);
const modes =
  process.env.LK_TEST_MODES || (extra.some((a) => a.startsWith('--project')) ? '' : DEFAULT_MODES);
if (modes) {
  extra.push('--project', 'unit');
  for (const mode of modes.split(',')) {
    const project = PROJECT_OF_MODE[mode];
    if (!project) {
      console.error(
        `LK_TEST_MODES: unknown mode '${mode}' (${Object.keys(PROJECT_OF_MODE).join(', ')})`,
      );
      process.exit(2);
    }
    extra.push('--project', project);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
const out = join(dir, 'report.json');
const r = spawnSync(
  process.execPath,
  [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${out}`,
    ...extra,
  ],
  { stdio: 'inherit' },
);
let exit = r.status ?? 1;
let summary;
try {
  const report = JSON.parse(readFileSync(out, 'utf8'));
  const skipped = report.numPendingTests + (report.numTodoTests ?? 0);
  summary =
    `${report.numPassedTests} passed, ${report.numFailedTests} failed` +
    (skipped ? `, ${skipped} skipped` : '');
  if (report.numTotalTests === 0) {
    console.error('no test ran');
    exit = exit || 1;
  }
} catch {
  summary = '0 passed, 1 failed (vitest wrote no report)';
  exit = exit || 1;
}
rmSync(dir, { recursive: true, force: true });
console.log(`\n${summary}`);
process.exit(exit);
