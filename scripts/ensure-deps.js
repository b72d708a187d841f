#!/usr/bin/env node
// Installs the workspace's dependencies (npm ci) when they are missing or older
// than package-lock.json, so that `npm run example` and `npm test` work on a
// fresh clone and after a pull that added a dependency.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';

function stale() {
  const installed = 'node_modules/.package-lock.json';
  if (!existsSync(installed)) return true;
  if (statSync('package-lock.json').mtimeMs > statSync(installed).mtimeMs) return true;
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  return names.some((name) => !existsSync(`node_modules/${name}`));
}

if (stale()) {
  console.log('installing dependencies (npm ci)...');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
