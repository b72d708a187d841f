/**
 * The CLI's pure parts: colour decisions, tables, times, the invocation list and detail views,
 * schema summaries, and the state edit's patch.
 */
import { describe, expect, it } from 'vitest';
import { COLOR, PLAIN, clip, colorEnabled, table, visibleWidth } from '../src/output.js';
import { duration, relative } from '../src/format/time.js';
import {
  formatBulk,
  formatInvocation,
  formatInvocationList,
  previewText,
  targetText,
  timelineOf,
} from '../src/format/invocations.js';
import { formatService, schemaSummary } from '../src/format/services.js';
import { editorCommand, jsonEqual, parseEditedState, statePatch } from '../src/state-edit.js';
import { ExitCode } from '../src/exit.js';
import type { InvocationDetail } from '../src/types.js';

const NOW = Date.UTC(2026, 11, 4, 8, 30, 0, 0);

describe('colorEnabled', () => {
  it.each([
    [{}, true, true],
    [{}, false, false],
    [{}, undefined, false],
    [{ NO_COLOR: '1' }, true, false],
    [{ NO_COLOR: '' }, true, true],
    [{ TERM: 'dumb' }, true, false],
    [{ CLICOLOR_FORCE: '1' }, false, true],
    [{ FORCE_COLOR: '1' }, false, true],
    [{ CLICOLOR_FORCE: '0' }, false, false],
    [{ CLICOLOR_FORCE: '1', NO_COLOR: '1' }, false, false],
  ] as const)('%o on a TTY=%s → %s', (env, tty, want) => {
    expect(colorEnabled(env, tty)).toBe(want);
  });
});

describe('table', () => {
  it('pads columns to their widest cell, ignoring colour codes, and trims line ends', () => {
    const out = table(
      ['A', 'LONGER'],
      [
        [COLOR.red('xx'), 'y'],
        ['x', ''],
      ],
    );
    // eslint-disable-next-line no-control-regex -- colour codes are what it removes
    expect(out.split('\n').map((l) => l.replace(/\u001b\[\d+m/g, ''))).toEqual([
      'A   LONGER',
      'xx  y',
      'x',
      '',
    ]);
    expect(visibleWidth(COLOR.bold('abc'))).toBe(3);
  });

  it('clip cuts to a width with an ellipsis, on one line', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('ab\n  cd', 10)).toBe('ab cd');
    expect(clip('abc', 3)).toBe('abc');
  });
});

describe('time', () => {
  it.each([
    [850, '850 ms'],
    [1234, '1.2 s'],
    [185_000, '3m 05s'],
    [7_380_000, '2h 03m'],
    [370_800_000, '4d 07h'],
  ])('duration(%d) = %s', (ms, text) => {
    expect(duration(ms)).toBe(text);
  });

  it('relative says in/ago', () => {
    expect(relative(NOW + 2000, NOW)).toBe('in 2.0 s');
    expect(relative(NOW - 185_000, NOW)).toBe('3m 05s ago');
  });
});

describe('invocations', () => {
  it('targetText writes service/key/handler', () => {
    expect(targetText({ service: 's', handler: 'h' })).toBe('s/h');
    expect(targetText({ service: 'o', key: 'k', handler: 'h' })).toBe('o/k/h');
  });

  it('previewText says the full size of a truncated value', () => {
    expect(previewText({ json: '"abc"' }, 60)).toBe('"abc"');
    expect(previewText({ json: '"abcdef', truncated: true, bytes: 5000 }, 60)).toBe(
      '"abcdef… (5000 bytes)',
    );
  });

  it('the list: one row per invocation, the next cursor, and a message when empty', () => {
    const out = formatInvocationList(
      {
        invocations: [
          {
            id: 'inv_1',
            target: { service: 'checkout', key: 'o1', handler: 'run' },
            status: 'backing-off',
            attempts: 7,
            createdAt: NOW - 60_000,
            nextRetryAt: NOW + 2000,
            lastFailure: { name: 'Error', message: 'gateway down 7' },
          },
        ],
        nextCursor: 'c2',
      },
      PLAIN,
      NOW,
    );
    const lines = out.split('\n');
    expect(lines[0]).toMatch(
      /^ID\s+TARGET\s+STATUS\s+ATTEMPTS\s+CREATED\s+NEXT RETRY\s+LAST FAILURE$/,
    );
    expect(lines[1]).toMatch(
      /^inv_1\s+checkout\/o1\/run\s+backing-off\s+7\s+1m 00s ago\s+in 2\.0 s\s+gateway down 7$/,
    );
    expect(lines[2]).toBe('more: --cursor c2');
    expect(formatInvocationList({ invocations: [] }, PLAIN, NOW)).toBe('no invocations match\n');
  });

  const failing: InvocationDetail = {
    id: 'inv_1',
    target: { service: 'checkout', key: 'o1', handler: 'run' },
    mode: 'workflow',
    status: 'backing-off',
    attempts: 7,
    createdAt: NOW - 60_000,
    nextRetryAt: NOW + 2000,
    failure: {
      attempt: 7,
      at: NOW - 500,
      step: { index: 1, kind: 'run', name: 'charge' },
      error: {
        name: 'Error',
        message: 'gateway down 7',
        stack: 'Error: gateway down 7\n    at charge (x.js:1:1)',
      },
      nextRetryAt: NOW + 2000,
    },
    timeline: [
      {
        index: 0,
        kind: 'run',
        name: 'reserve',
        recordedAt: NOW - 59_000,
        durationMs: 12,
        value: { json: '"reserved"' },
      },
      { index: 1, kind: 'sleep', name: 'wait', recordedAt: NOW - 58_000, due: NOW + 1000 },
      { index: 2, kind: 'call', name: 'child', childId: 'inv_2', value: { json: '42' } },
    ],
  };

  it('describe: header, the failing step with its stack, and the journal timeline', () => {
    const out = formatInvocation(failing, PLAIN, NOW);
    expect(out).toContain('Invocation inv_1');
    expect(out).toMatch(/target\s+checkout\/o1\/run \(workflow\)/);
    expect(out).toMatch(/attempts\s+7/);
    expect(out).toMatch(/next retry\s+2026-12-04T08:30:02\.000Z \(in 2\.0 s\)/);
    expect(out).toContain('Last failure (attempt 7)');
    expect(out).toMatch(/step\s+entry 1 run 'charge'/);
    expect(out).toMatch(/error\s+gateway down 7/);
    expect(out).toContain('      at charge (x.js:1:1)');
    expect(out).toContain('Journal (3 entries)');
    expect(out).toMatch(/0\s+run\s+reserve\s+08:29:01\.000\s+12 ms\s+"reserved"/);
    expect(out).toMatch(/1\s+sleep\s+wait\s+08:29:02\.000\s+until 08:30:01\.000/);
    expect(out).toMatch(/2\s+call\s+child\s+→ inv_2 42/);
  });

  it('describe: a failure outside a step, an outcome, and an older server journal', () => {
    const out = formatInvocation(
      {
        id: 'inv_3',
        target: { service: 's', handler: 'h' },
        status: 'completed',
        failure: { attempt: 1, error: { name: 'TypeError', message: 'boom' } },
        outcome: { ok: false, error: { name: 'TerminalError', message: 'killed' } },
        journal: [
          { k: 'run', n: 'a', v: 1 },
          { k: 'call', n: 'b', id: 'inv_9' },
        ],
      },
      PLAIN,
      NOW,
    );
    expect(out).toMatch(/step\s+outside a step/);
    expect(out).toMatch(/error\s+TypeError: boom/);
    expect(out).toMatch(/failed TerminalError: killed/);
    expect(
      timelineOf({
        id: 'x',
        target: { service: 's', handler: 'h' },
        status: 'running',
        journal: [{ k: 'run', n: 'a', v: 1 }],
      }),
    ).toEqual([{ index: 0, kind: 'run', name: 'a', value: { json: '1' } }]);
  });

  it('bulk results: counts, dry-run ids, failures', () => {
    expect(
      formatBulk('kill', { dryRun: true, matched: 2, applied: ['a', 'b'], failed: [] }, PLAIN),
    ).toBe('2 matched; would kill 2\n  a\n  b\n');
    const out = formatBulk(
      'killed',
      {
        dryRun: false,
        matched: 2,
        applied: ['a'],
        failed: [{ id: 'b', code: 'CONFLICT', message: 'done' }],
      },
      PLAIN,
    );
    expect(out).toMatch(
      /^2 matched; killed: 1; 1 failed\nID\s+CODE\s+REASON\nb\s+CONFLICT\s+done\n$/,
    );
  });
});

describe('schemaSummary', () => {
  it.each([
    [{}, 'any'],
    [{ $schema: 'x' }, 'any'],
    [{ type: 'string' }, 'string'],
    [{ type: 'integer' }, 'integer'],
    [{ type: 'array', items: { type: 'number' } }, 'number[]'],
    [
      { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
      '(string | null)[]',
    ],
    [{ enum: ['a', 'b'] }, '"a" | "b"'],
    [{ const: 3 }, '3'],
    [{ type: ['string', 'null'] }, 'string | null'],
    [
      {
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'boolean' } },
        required: ['a'],
      },
      '{ a: string; b?: boolean }',
    ],
    [{ type: 'object', additionalProperties: { type: 'number' } }, '{ [name: string]: number }'],
    [
      {
        type: 'object',
        properties: {
          a: {
            type: 'object',
            properties: {
              b: { type: 'object', properties: { c: { type: 'object', properties: {} } } },
            },
          },
        },
        required: [],
      },
      '{ a?: { b?: { c?: {…} } } }',
    ],
  ])('%o → %s', (schema, text) => {
    expect(schemaSummary(schema)).toBe(text);
  });

  it('services describe shows kinds, ingress and schema summaries', () => {
    const out = formatService(
      {
        name: 'cart',
        kind: 'object',
        handlers: [
          {
            name: 'add',
            kind: 'exclusive',
            private: false,
            options: {},
            input: { type: 'string' },
            output: {},
            inputContentType: 'application/json',
            outputContentType: 'application/json',
          },
          {
            name: 'peek',
            kind: 'shared',
            private: true,
            options: { retryPolicy: { maxAttempts: null } },
            input: {},
            output: { type: 'number' },
            inputContentType: 'application/json',
            outputContentType: 'application/json',
          },
        ],
      },
      PLAIN,
    );
    expect(out).toContain('object cart');
    expect(out).toMatch(/add\s+exclusive\s+public\s+string\s+any/);
    expect(out).toMatch(/peek\s+shared\s+private\s+any\s+number/);
    expect(out).toMatch(/options\s+retry\(maxAttempts=∞\)/);
  });
});

describe('state edit', () => {
  it('the patch sets what changed or is new and deletes what is gone', () => {
    const before = { a: 1, b: { x: [1, 2] }, c: 'same', d: 'gone' };
    const after = { a: 2, b: { x: [1, 2] }, c: 'same', e: null, f: { y: 1 } };
    expect(statePatch(before, after)).toEqual({ a: 2, d: null, e: null, f: { y: 1 } });
    expect(statePatch(before, { ...before })).toEqual({});
  });

  it('jsonEqual compares objects by members in any order', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });

  it.each([['{ "a": '], ['[1, 2]'], ['"text"'], ['null']])(
    'an edit to %s exits 1 and says nothing changed',
    (text) => {
      try {
        parseEditedState(text);
        expect.unreachable();
      } catch (e) {
        expect((e as { exitCode: number }).exitCode).toBe(ExitCode.FAILURE);
        expect((e as Error).message).toContain('nothing was changed');
      }
    },
  );

  it('the editor is LATCHKEY_EDITOR, else EDITOR, else VISUAL, else vi', () => {
    expect(editorCommand({})).toBe('vi');
    expect(editorCommand({ VISUAL: 'nano' })).toBe('nano');
    expect(editorCommand({ VISUAL: 'nano', EDITOR: 'ed' })).toBe('ed');
    expect(editorCommand({ VISUAL: 'nano', EDITOR: 'ed', LATCHKEY_EDITOR: 'code -w' })).toBe(
      'code -w',
    );
  });
});
