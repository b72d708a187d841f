/**
 * Eager attempts (`Attempt.eager`), in memory: the runner lets an eager attempt read and write
 * state and complete, and stops it before any other journal entry, so nothing of that entry runs;
 * ctx.console lines are written only once its completion is confirmed.
 */
import { describe, expect, it } from 'vitest';
import { object, service, type Context, type ObjectContext } from '@latchkey/core';
import { Registry, createExecutor } from '@latchkey/core/internal';
import { MemoryAttempt } from './memory-attempt.js';

const quiet = {
  ...console,
  log: () => undefined,
  warn: () => undefined,
  info: () => undefined,
} as Console;

let stepRuns = 0;

const box = object({
  name: 'box',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const next = ((await ctx.get<number>('n')) ?? 0) + n;
      ctx.set('n', next);
      return next;
    },
    addThenStep: async (ctx: ObjectContext, n: number) => {
      ctx.set('n', n);
      return await ctx.run('effect', () => ++stepRuns);
    },
    addThenSend: async (ctx: ObjectContext, n: number) => {
      ctx.set('n', n);
      ctx.objectSendClient(box, 'other').add(n);
      return n;
    },
    addThenSleep: async (ctx: ObjectContext, n: number) => {
      ctx.set('n', n);
      await ctx.sleep(10);
      return n;
    },
    note: async (ctx: ObjectContext, text: string) => {
      ctx.console.log(`note ${text}`);
      return text;
    },
  },
});

const svc = service({
  name: 'svc',
  handlers: { retried: async (_ctx: Context) => Promise.reject(new Error('flaky')) },
});

function eagerAttempt(
  handler: string,
  input: unknown,
  state: [string, string][] = [],
): MemoryAttempt {
  return new MemoryAttempt({
    target: { service: 'box', handler, key: 'k' },
    input: JSON.stringify(input),
    state: new Map(state),
    eager: true,
  });
}

describe('eager attempts', () => {
  it('complete a handler that only reads and writes state, with its get/set journal', async () => {
    const a = eagerAttempt('add', 2, [['n', '1']]);
    await createExecutor(new Registry([box]), { logger: quiet }).run(a);
    expect(a.calls).toEqual([
      {
        kind: 'complete',
        from: 0,
        entries: [
          { k: 'get', n: 'n', v: 1 },
          { k: 'set', n: 'n', v: 3 },
        ],
        outcome: { ok: true, value: '3' },
      },
    ]);
  });

  it.each([
    ['a step', 'addThenStep'],
    ['a send', 'addThenSend'],
    ['a sleep', 'addThenSleep'],
  ])('stop before %s: nothing of it runs and nothing is committed', async (_what, handler) => {
    stepRuns = 0;
    const a = eagerAttempt(handler, 5);
    await createExecutor(new Registry([box]), { logger: quiet }).run(a);
    expect(a.calls).toEqual([]);
    expect(a.journal).toEqual([]);
    expect(stepRuns).toBe(0);
  });

  it('stop at a failure that would be retried, without its retry warning', async () => {
    const lines: string[] = [];
    const logger = {
      ...quiet,
      warn: (...args: unknown[]) => void lines.push(args.join(' ')),
    } as Console;
    const a = new MemoryAttempt({
      target: { service: 'svc', handler: 'retried' },
      mode: 'service',
      eager: true,
    });
    a.retry = () => Promise.reject(Object.assign(new Error('declined'), { kind: 'FENCED' }));
    await createExecutor(new Registry([svc]), { logger }).run(a);
    expect(lines).toEqual([]);
  });

  it('write ctx.console lines only when the completion is confirmed', async () => {
    const lines: string[] = [];
    const logger = {
      ...quiet,
      log: (...args: unknown[]) => void lines.push(args.join(' ')),
    } as Console;
    const executor = createExecutor(new Registry([box]), { logger });
    const refused = eagerAttempt('note', 'dropped');
    refused.refuseCompletion = true;
    await executor.run(refused);
    expect(refused.calls.map((c) => c.kind)).toEqual(['complete']);
    const confirmed = eagerAttempt('note', 'kept');
    await executor.run(confirmed);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/note kept$/);
  });
});
