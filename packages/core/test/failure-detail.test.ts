/**
 * What the runtime tells the store about a failed attempt (the step it failed in, the attempt,
 * the stack), the steps' measured durations, and the pure parts of the admin detail: which
 * restart prefixes can be kept, previews and the timeline.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_FAILURE_MESSAGE,
  MAX_FAILURE_STACK,
  handlers,
  service,
  type Completion,
  type Context,
  type InvocationDetail,
} from '@latchkey/core';
import {
  Registry,
  createExecutor,
  prefixProblem,
  preview,
  stepMsOf,
  timeline,
} from '@latchkey/core/internal';
import { MemoryAttempt } from './memory-attempt.js';

const quiet = { ...console, warn: () => undefined, log: () => undefined } as Console;

async function run(
  handler: (ctx: Context) => Promise<unknown>,
  init: Partial<ConstructorParameters<typeof MemoryAttempt>[0]> = {},
): Promise<MemoryAttempt> {
  const svc = service({
    name: 's',
    handlers: { h: handlers.handler({ retryPolicy: { maxAttempts: 5 } }, handler) },
  });
  const a = new MemoryAttempt({ target: { service: 's', handler: 'h' }, mode: 'service', ...init });
  await createExecutor(new Registry([svc]), { logger: quiet }).run(a);
  await a.ended;
  return a;
}

describe('failure detail', () => {
  it('names the step whose closure threw, with the attempt and the stack, though nothing new was committed', async () => {
    const a = await run(
      async (ctx) => {
        await ctx.run('prep', () => 1);
        return ctx.run('charge', () => {
          throw new Error('gateway down');
        });
      },
      { attempt: 4, journal: [{ k: 'run', n: 'prep', v: 1 }] },
    );
    expect(a.calls).toMatchObject([{ kind: 'retry', failure: { message: 'gateway down' } }]);
    const d = a.failureDetails[0]!;
    expect(d).toMatchObject({ attempt: 4, step: { index: 1, kind: 'run', name: 'charge' } });
    expect(d.stack).toContain('gateway down');
  });

  it('names no step when the handler throws outside any step', async () => {
    const a = await run(async (ctx) => {
      await ctx.run('ok', () => 1);
      throw new RangeError('outside');
    });
    expect(a.calls.at(-1)).toMatchObject({ kind: 'retry', failure: { name: 'RangeError' } });
    expect(a.failureDetails[0]).toMatchObject({ attempt: 1 });
    expect(a.failureDetails[0]!.step).toBeUndefined();
  });

  it('names the diverging call of a journal mismatch', async () => {
    const a = await run(
      async (ctx) => {
        await ctx.run('now', () => 1);
      },
      { journal: [{ k: 'run', n: 'then', v: 1 }] },
    );
    expect(a.failureDetails[0]?.step).toEqual({ index: 0, kind: 'run', name: 'now' });
  });

  it('cuts a long message and stack to their bounds', async () => {
    const a = await run(async () => {
      const e = new Error('m'.repeat(MAX_FAILURE_MESSAGE * 2));
      e.stack = 's'.repeat(MAX_FAILURE_STACK * 2);
      throw e;
    });
    const call = a.calls[0] as { failure: { message: string } };
    expect(call.failure.message.length).toBeLessThanOrEqual(MAX_FAILURE_MESSAGE + 1);
    expect(a.failureDetails[0]!.stack).toHaveLength(MAX_FAILURE_STACK);
  });

  it("measures a step's duration and hands it to the store with the entry, outside its JSON", async () => {
    const a = await run(async (ctx) =>
      ctx.run('slow', async () => {
        await new Promise((r) => setTimeout(r, 40));
        return 'done';
      }),
    );
    const commit = a.calls.find((c) => c.kind === 'commit' || c.kind === 'complete')!;
    const entry = (commit as { entries: Parameters<typeof stepMsOf>[0][] }).entries[0]!;
    expect(entry).toEqual({ k: 'run', n: 'slow', v: 'done' });
    // No earlier than the closure's timer (Date.now may round down by a millisecond).
    expect(stepMsOf(entry)).toBeGreaterThanOrEqual(39);
  });
});

describe('restart prefixes', () => {
  const journal = [
    { k: 'run' as const, n: 'a', v: 1 },
    { k: 'call' as const, n: 'x/y', id: 'inv_1' },
    { k: 'sleep' as const, due: 5 },
    { k: 'awk' as const, id: 'sign_1x' },
    { k: 'signal' as const, n: 'cancel' as const, v: [3] },
  ];
  const done = new Map<number, Completion>([[1, { ok: true, v: '1' }]]);

  it.each([
    [0, undefined],
    [1, undefined],
    [3, undefined],
    [4, 'entry 3 (awk) has no result: keep at most 3 entries'],
    [6, 'keepPrefix 6 is longer than the journal (5 entries)'],
    [-1, 'keepPrefix must be a whole number, at least 0'],
    [1.5, 'keepPrefix must be a whole number, at least 0'],
  ])('keepPrefix %s: %s', (n, problem) => {
    expect(prefixProblem(journal, done, n)).toBe(problem);
  });

  it('never keeps a cancellation', () => {
    const all = new Map<number, Completion>([...done, [3, { ok: true }]]);
    expect(prefixProblem(journal, all, 5)).toBe(
      'entry 4 is a cancellation: keep at most 4 entries',
    );
  });
});

describe('admin detail view', () => {
  it('cuts previews at a byte size, never inside a character', () => {
    const o = { previewBytes: 8, full: false };
    expect(preview('"abc"', o)).toEqual({ json: '"abc"' });
    expect(preview('"ééééé"', o)).toEqual({ json: '"ééé', truncated: true, bytes: 12 });
    expect(preview('"ééééé"', { ...o, full: true })).toEqual({ json: '"ééééé"' });
  });

  it('builds the timeline: steps, sleeps and calls with durations, sends with their child', () => {
    const d = {
      journal: [
        { k: 'run', n: 'a', v: { big: 'x'.repeat(20) } },
        { k: 'sleep', n: 'nap', due: 1500 },
        { k: 'call', n: 'x/y', id: 'inv_c' },
        { k: 'send', n: 'x/z', id: 'inv_s' },
        { k: 'awk', id: 'sign_1secret' },
      ],
      times: [
        { recordedAt: 1000, stepMs: 7 },
        { recordedAt: 1100 },
        { recordedAt: 1200, completedAt: 1260 },
        { recordedAt: 1300 },
      ],
      completions: new Map([[2, { ok: false, e: { name: 'E', code: 'TERMINAL', message: 'no' } }]]),
    } as unknown as InvocationDetail;
    expect(timeline(d, { previewBytes: 10, full: false })).toEqual([
      {
        index: 0,
        kind: 'run',
        name: 'a',
        recordedAt: 1000,
        durationMs: 7,
        value: { json: '{"big":"xx', truncated: true, bytes: 30 },
      },
      { index: 1, kind: 'sleep', name: 'nap', recordedAt: 1100, durationMs: 400, due: 1500 },
      {
        index: 2,
        kind: 'call',
        name: 'x/y',
        recordedAt: 1200,
        durationMs: 60,
        childId: 'inv_c',
        failure: { name: 'E', code: 'TERMINAL', message: 'no' },
      },
      { index: 3, kind: 'send', name: 'x/z', recordedAt: 1300, childId: 'inv_s' },
      // An awakeable's id holds a secret: never shown.
      { index: 4, kind: 'awk' },
    ]);
  });
});
