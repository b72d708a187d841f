#!/usr/bin/env node
// Runs the test suite once, as vitest projects (vitest.config.ts): `unit` (no Redis), `redis`
// (handlers' own inactivity timeouts), `redis-suspend` (the same files with
// LATCHKEY_INACTIVITY_TIMEOUT=0, "always suspend": every wait suspends and resumes by replay) and
// `redis-cluster` (the same files on a 3-master Redis Cluster, plus test/*.cluster.test.ts).
// Each standalone Redis project starts a private redis-server when REDIS_URL is unset (see
// test/setup/global-redis.ts); the cluster project starts a private cluster when
// REDIS_CLUSTER_NODES is unset (test/setup/global-cluster.ts). Prints "N passed, N failed";
// fails when no test ran.
// `npm test` runs `npm run check` (build, type-check of the tests, lint...) first.
//
// The whole suite runs in LK_TEST_LANES (default 2) vitest processes side by side, each taking a
// share of the files (`--shard=i/n`, vitest splits by a hash of the file path, so a file's passes
// usually share a lane). Each lane starts its own private Redis servers, and inside a lane the
// files still run one at a time, so a file is always alone on its Redis. A lane's lines are
// prefixed `[i/n]`. The test files wait on events or poll with deadlines, so two lanes on two
// cores only slow them down; on 2 cores the suite takes about 15 minutes this way instead of 23.
//
// Extra arguments go to one vitest process: `node scripts/test.js --project redis
// test/basic.redis.test.ts`. LK_TEST_MODES=default|always-suspend|cluster (comma-separated) keeps
// the unit project and only the named Redis modes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const PROJECT_OF_MODE = {
  default: 'redis',
  'always-suspend': 'redis-suspend',
  cluster: 'redis-cluster',
};
const DEFAULT_MODES = 'default,always-suspend,cluster';
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
const requested = Number(process.env.LK_TEST_LANES || 2);
if (!Number.isInteger(requested) || requested < 1) {
  console.error(`LK_TEST_LANES: expected a positive integer, got '${process.env.LK_TEST_LANES}'`);
  process.exit(2);
}
// Only the whole suite is split: a run narrowed to some files stays one process.
const whole = process.argv.slice(2).length === 0;
const lanes = whole ? requested : 1;

const dir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));

/** Runs one vitest process; resolves with its exit status and the path of its JSON report. */
function runLane(index) {
  const out = join(dir, `report-${index}.json`);
  const args = [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${out}`,
    ...extra,
    ...(lanes > 1 ? [`--shard=${index}/${lanes}`] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: lanes > 1 ? 'pipe' : 'inherit' });
  if (lanes > 1) {
    const tag = `[${index}/${lanes}] `;
    createInterface({ input: child.stdout }).on('line', (l) =>
      process.stdout.write(tag + l + '\n'),
    );
    createInterface({ input: child.stderr }).on('line', (l) =>
      process.stderr.write(tag + l + '\n'),
    );
  }
  return new Promise((done) => {
    child.on('close', (code, signal) => done({ status: code ?? (signal ? 1 : 0), out }));
  });
}

const results = await Promise.all(Array.from({ length: lanes }, (_, i) => runLane(i + 1)));
let exit = results.find((r) => r.status !== 0)?.status ?? 0;
const total = { passed: 0, failed: 0, skipped: 0, tests: 0 };
let missing = 0;
for (const { out } of results) {
  try {
    const report = JSON.parse(readFileSync(out, 'utf8'));
    total.passed += report.numPassedTests;
    total.failed += report.numFailedTests;
    total.skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    total.tests += report.numTotalTests;
  } catch {
    missing += 1;
  }
}
rmSync(dir, { recursive: true, force: true });
let summary =
  `${total.passed} passed, ${total.failed + missing} failed` +
  (total.skipped ? `, ${total.skipped} skipped` : '');
if (missing) {
  summary += ` (${missing} vitest process${missing > 1 ? 'es' : ''} wrote no report)`;
  exit = exit || 1;
}
if (total.tests === 0 && !missing) {
  console.error('no test ran');
  exit = exit || 1;
}
console.log(`\n${summary}`);
process.exit(exit);
