import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

/**
 * Resolves `@latchkey/<pkg>` and `@latchkey/<pkg>/<subpath>` to the TypeScript source behind the
 * package's export (`./dist/x.js` → `./src/x.ts`, read from the package's own `exports`), so the
 * unit project runs without a build. The Redis projects keep the built packages: their worker
 * processes (test/fixtures/*.mjs) load `dist` too.
 */
function latchkeySources(): Plugin {
  return {
    name: 'latchkey-sources',
    enforce: 'pre',
    resolveId(id) {
      const m = /^@latchkey\/([^/]+)(\/.+)?$/.exec(id);
      if (!m) return null;
      const dir = resolve(ROOT, 'packages', m[1]!);
      if (!existsSync(resolve(dir, 'package.json'))) return null;
      const pkg = JSON.parse(readFileSync(resolve(dir, 'package.json'), 'utf8')) as {
        exports?: Record<string, string | { default?: string; import?: string }>;
      };
      const entry = pkg.exports?.[`.${m[2] ?? ''}`];
      const target = typeof entry === 'string' ? entry : (entry?.import ?? entry?.default);
      if (!target?.startsWith('./dist/')) return null;
      return resolve(dir, target.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
    },
  };
}

// The Redis projects share one shape: every *.redis.test.ts, a private Redis per project (a
// redis-server from test/setup/global-redis.ts unless REDIS_URL is set, or a 3-master cluster from
// test/setup/global-cluster.ts unless REDIS_CLUSTER_NODES is set), one file at a time (the tests
// assume they are alone on their Redis), one project after the other. `npm test`
// (scripts/test.js) runs the suite in two vitest processes side by side, each with a share of the
// files (`--shard`) and Redis servers of its own.
const REDIS = {
  include: [
    'test/**/*.redis.test.ts',
    'packages/*/test/**/*.redis.test.ts',
    'examples/*/test/**/*.redis.test.ts',
  ],
  globalSetup: ['test/setup/global-redis.ts'],
  testTimeout: 120_000,
  hookTimeout: 60_000,
  fileParallelism: false,
  maxWorkers: 1,
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      {
        // Pure tests: no Redis, no build (`npm run test:unit`).
        plugins: [latchkeySources()],
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.redis.test.ts', '**/node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...REDIS,
          name: 'redis',
          // Handlers' own inactivity timeouts, whatever the shell says (serve() and the tests
          // read an empty value as unset).
          env: { LATCHKEY_INACTIVITY_TIMEOUT: '' },
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...REDIS,
          // "Always suspend": every wait suspends and resumes by replay.
          name: 'redis-suspend',
          env: { LATCHKEY_INACTIVITY_TIMEOUT: '0' },
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          ...REDIS,
          // The same files on a 3-master Redis Cluster (sharded pub/sub, keys spread over masters).
          name: 'redis-cluster',
          // …and the cluster's own tests (each starts the cluster it needs: replicas, failovers).
          include: [...REDIS.include, 'test/**/*.cluster.test.ts'],
          globalSetup: ['test/setup/global-cluster.ts'],
          env: { LATCHKEY_INACTIVITY_TIMEOUT: '' },
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
