// ESLint flat config: typescript-eslint's type-checked rules over every TypeScript file of the
// workspace (packages, examples, bench, test), the plain recommended rules over the JavaScript
// (scripts, test fixtures, configs), and the import boundaries of docs/ARCHITECTURE.md.
// Run: `npx eslint .` (part of `npm run check`).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const TS = ['**/*.ts', '**/*.mts', '**/*.cts'];
const JS = ['**/*.js', '**/*.mjs', '**/*.cjs'];

// Everything that does I/O: Node's built-ins (with and without the `node:` prefix), the
// network and Redis clients, and the Redis store itself.
const IO_MODULES = [
  ...builtinModules.filter((m) => !m.startsWith('_')).flatMap((m) => [m, `node:${m}`]),
  'ws',
  'ioredis',
  'bullmq',
];
// The import() form of the same rule (no-restricted-imports sees static imports only).
const NO_DYNAMIC_REDIS_STORE = {
  selector: 'ImportExpression[source.value=/^@latchkey.redis-store/]',
  message: 'core never imports the Redis store (serve() loads it by a computed dynamic import).',
};
// Packages are used through their exports only, never by reaching into another one's files.
const NO_DEEP_IMPORTS = {
  group: ['@latchkey/*/src', '@latchkey/*/src/**', '@latchkey/*/dist', '@latchkey/*/dist/**'],
  message: 'import a package through its exports (`@latchkey/core`, `@latchkey/core/testing`...).',
};
const NO_REDIS_STORE = {
  group: ['@latchkey/redis-store', '@latchkey/redis-store/*'],
  message: 'core never imports the Redis store (serve() loads it by a computed dynamic import).',
};

// Node.js globals for the JavaScript files (TypeScript files get theirs from @types/node and
// typescript-eslint turns `no-undef` off for them).
const NODE_GLOBALS = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'structuredClone',
    'fetch',
    'AbortController',
    'AbortSignal',
    'TextEncoder',
    'TextDecoder',
    'performance',
    'queueMicrotask',
  ].map((g) => [g, 'readonly']),
);

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      '**/.latchkey/',
      'bench/results/',
      // Declarations of the plain-JS fixtures: only types, checked by `tsc -p test`.
      '**/*.d.mts',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  {
    files: TS,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // Each file is checked in the tsconfig.json nearest to it (packages/*, examples/*,
        // bench, test).
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Promise hygiene: the bugs that matter most in a durable runtime. Both are in
      // recommendedTypeChecked already; listed so they stay on whatever the preset does.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `catch (e)` binds unknown values and the code narrows them; an unused `_x` is a
      // deliberate placeholder (positional parameters, destructuring to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'none',
          ignoreRestSiblings: true,
        },
      ],
      // Entry kinds, frame types, reply tags: a new member must be handled everywhere.
      // Passing a caught `unknown` on (reject(e) in a catch) is fine; new rejections are Errors.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [NO_DEEP_IMPORTS] }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports' },
      ],
    },
  },
  {
    // Libraries log through the logger they are given (serve({ logger }), the store's options).
    files: ['packages/*/src/**'],
    rules: { 'no-console': 'error' },
  },
  {
    // Files outside every package's tsconfig.json: the packages' and examples' tests and the
    // vitest config are type-checked by test/tsconfig.json (`tsc -p test`), so ESLint uses that
    // program for them.
    files: ['packages/*/test/**/*.ts', 'examples/*/test/**/*.ts', 'vitest.config.ts'],
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: ['./test/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    files: ['packages/*/test/**', 'examples/*/test/**', 'test/**'],
    rules: {
      // Tests read JSON bodies, Redis replies and WebSocket frames whose shape is the thing under
      // test; they assert on `any` values on purpose (expect(...) checks them), so the unsafe-any
      // family is noise there. Source code keeps all of them.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // expect(obj.method).toHaveBeenCalled() and handler tables pass methods unbound on purpose.
      '@typescript-eslint/unbound-method': 'off',
      // `String(data)` of a ws 'message' (typed Buffer | ArrayBuffer | Buffer[], a Buffer under the
      // default binaryType the tests use) and of caught values in failure messages.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    files: ['packages/*/test/**', 'packages/*/src/testing/**', 'examples/**', 'test/**'],
    rules: {
      // A handler is `async` by the API's contract (Restate-shaped: handlers return promises),
      // whether or not its body awaits; tests, the contract suite's services and examples are
      // mostly such handlers. The packages' own source keeps the rule, where a needless `async` is
      // a real smell.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: JS,
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: NODE_GLOBALS },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },

  // --- Import boundaries (docs/ARCHITECTURE.md) ---
  {
    files: ['packages/core/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [NO_DEEP_IMPORTS, NO_REDIS_STORE] },
      ],
      'no-restricted-syntax': ['error', NO_DYNAMIC_REDIS_STORE],
    },
  },
  {
    // The definitions and the journal are pure: no I/O, and nothing from the layers above them.
    files: ['packages/core/src/journal/**', 'packages/core/src/define/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.map((name) => ({
            name,
            message: 'journal/ and define/ do no I/O (see docs/ARCHITECTURE.md).',
          })),
          patterns: [
            NO_DEEP_IMPORTS,
            NO_REDIS_STORE,
            {
              // ../ingress, ../runtime and the store, except the invocation request types
              // (plain data: an accept effect carries one).
              regex: String.raw`^\.\./(ingress|runtime)(/|$)|^\.\./store(\.js|/(?!invocation\.js$).*)?$`,
              message: 'journal/ and define/ import nothing from ingress/, runtime/ or the store.',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        NO_DYNAMIC_REDIS_STORE,
        {
          selector: 'ImportExpression',
          message: 'journal/ and define/ load no modules at run time.',
        },
      ],
    },
  },
  {
    // The web UI renders hostile data (state values, error messages): text nodes and attributes
    // only (ui/src/dom.ts), never markup.
    files: ['packages/core/ui/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'write', 'writeln'].map((property) => ({
          property,
          message: 'build DOM with h()/append() from ui/src/dom.ts: text, never markup.',
        })),
      ],
      'no-eval': 'error',
    },
  },
  {
    // The client runs in browsers too: from core it takes types and the wire protocol only.
    files: ['packages/client/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@latchkey/core',
              allowTypeImports: true,
              message: 'the client imports only types from @latchkey/core (and its protocol).',
            },
          ],
          patterns: [
            {
              group: ['@latchkey/core/*', '!@latchkey/core/protocol'],
              allowTypeImports: true,
              message: 'the client imports only types from @latchkey/core (and its protocol).',
            },
            NO_DEEP_IMPORTS,
            NO_REDIS_STORE,
          ],
        },
      ],
    },
  },
);
