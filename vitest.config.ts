import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.redis.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'redis',
          include: ['test/**/*.redis.test.ts', 'packages/*/test/**/*.redis.test.ts', 'examples/*/test/**/*.redis.test.ts'],
          globalSetup: ['test/setup/global-redis.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
