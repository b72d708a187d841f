#!/usr/bin/env node
// `npm run check`: every static check, in order, each run even when an earlier one failed (the
// build always runs before the lint: type-aware rules read the packages' declarations). Prints one
// line per step at the end and exits 1 if any failed. `npm test` runs it before the tests.
//
//   node scripts/check.js                  all steps
//   node scripts/check.js lint build       only the named steps
import { spawnSync } from 'node:child_process';

const node = process.execPath;
const STEPS = [
  ['deps', [node, 'scripts/ensure-deps.js']],
  ['format', [node, 'node_modules/prettier/bin/prettier.cjs', '--check', '--log-level=warn', '.']],
  ['build', [node, 'node_modules/typescript/bin/tsc', '-b']],
  ['lint', [node, 'node_modules/eslint/bin/eslint.js', '.']],
  ['test-types', [node, 'node_modules/typescript/bin/tsc', '-p', 'test/tsconfig.json']],
  ['module-map', [node, 'scripts/module-map.js', '--check']],
  ['file-size', [node, 'scripts/module-map.js', '--max-lines=400']],
];

const only = process.argv.slice(2);
const unknown = only.filter((s) => !STEPS.some(([name]) => name === s));
if (unknown.length) {
  console.error(
    `unknown step(s): ${unknown.join(', ')}; steps: ${STEPS.map(([n]) => n).join(', ')}`,
  );
  process.exit(2);
}
const results = [];
for (const [name, [cmd, ...args]] of STEPS) {
  if (only.length && !only.includes(name)) continue;
  console.log(`\n=== check: ${name} (${[cmd === node ? 'node' : cmd, ...args].join(' ')}) ===`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  const ok = r.status === 0;
  results.push({ name, ok, seconds: (Date.now() - started) / 1000 });
  // Without dependencies nothing else can run.
  if (name === 'deps' && !ok) break;
}
console.log('\n=== check summary ===');
for (const { name, ok, seconds } of results) {
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${name} (${seconds.toFixed(1)}s)`);
}
const failed = results.filter((r) => !r.ok);
if (failed.length) {
  console.error(`\n${failed.length} check(s) failed: ${failed.map((r) => r.name).join(', ')}`);
  process.exit(1);
}
