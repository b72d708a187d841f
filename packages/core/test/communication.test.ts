import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  RestatePromise,
  TimeoutError,
  object,
  service,
  type Context,
  type Entry,
  type ObjectContext,
} from '@latchkey/core';
import { Registry, createExecutor } from '@latchkey/core/internal';
import { MemoryAttempt } from './memory-attempt.js';

const quiet = {
  ...console,
  log: () => undefined,
  warn: () => undefined,
  info: () => undefined,
} as Console;

function until(what: string, fn: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const tick = (): void => {
      if (fn()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 1);
    };
    tick();
  });
}

describe('calls, awakeables and combinators in the journal', () => {
  it('journals a call with a deterministic child id and an accept effect, and returns the delivered result', async () => {
    const calls = service({
      name: 'p2',
      handlers: {
        h: async (ctx: Context) =>
          ctx.genericCall<string>({ service: 'child', method: 'work', parameter: 'x' }),
      },
    });
    const a = new MemoryAttempt({ target: { service: 'p2', handler: 'h' }, mode: 'service' });
    const run = createExecutor(new Registry([calls]), { logger: quiet }).run(a);
    await until('the call to be committed', () => a.calls.length > 0);
    expect(a.calls[0]).toMatchObject({
      kind: 'commit',
      entries: [{ k: 'call', n: 'child/work', id: 'inv_00child0child' }],
      effects: [
        {
          t: 'accept',
          index: 0,
          req: {
            id: 'inv_00child0child',
            target: { service: 'child', handler: 'work' },
            mode: 'service',
            input: '"x"',
            caller: { id: a.invocation.id, index: 0 },
          },
        },
      ],
    });
    a.listener!.completion(0, { ok: true, v: '"done"' });
    await run;
    expect(a.calls.at(-1)).toMatchObject({
      kind: 'complete',
      outcome: { ok: true, value: '"done"' },
    });
  });

  it('suspends on an awaited awakeable and resumes by replay with its completion', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          const { promise } = ctx.awakeable<number>();
          return (await promise) + 1;
        },
      },
    });
    const a = new MemoryAttempt({ target: { service: 's', handler: 'h' }, mode: 'service' });
    await createExecutor(new Registry([svc]), { logger: quiet, inactivityTimeoutMs: 0 }).run(a);
    expect(a.calls).toEqual([
      {
        kind: 'suspend',
        from: 0,
        entries: [{ k: 'awk', id: expect.stringMatching(/^sign_1/) as string }],
        wakeAt: null,
        awaiting: [0],
      },
    ]);
    const resumed = new MemoryAttempt({
      target: { service: 's', handler: 'h' },
      mode: 'service',
      journal: a.journal,
      completions: new Map([[0, { ok: true, v: '41' }]]),
    });
    await createExecutor(new Registry([svc]), { logger: quiet, inactivityTimeoutMs: 0 }).run(
      resumed,
    );
    expect(resumed.calls).toEqual([
      { kind: 'complete', from: 1, entries: [], outcome: { ok: true, value: '42' } },
    ]);
  });

  it('replays a race to its journaled winner even when another child has settled since', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          const awk = ctx.awakeable<string>();
          return RestatePromise.race([
            ctx.sleep(1000).map(() => 'sleep'),
            awk.promise.map((v) => `awk:${v}`),
          ]);
        },
      },
    });
    // The awakeable (index 0) won; by the time of the replay the sleep (index 1) is long due.
    const journal: Entry[] = [
      { k: 'awk', id: 'sign_1x' },
      { k: 'sleep', due: 1_000_500 },
      { k: 'comb', n: 'race', v: [0] },
    ];
    const a = new MemoryAttempt({
      target: { service: 's', handler: 'h' },
      mode: 'service',
      journal,
      completions: new Map([[0, { ok: true, v: '"hi"' }]]),
    });
    a.clock = 2_000_000;
    await createExecutor(new Registry([svc]), { logger: quiet }).run(a);
    expect(a.calls).toEqual([
      { kind: 'complete', from: 3, entries: [], outcome: { ok: true, value: '"awk:hi"' } },
    ]);
  });

  it('journals the winner of a live race and fails orTimeout with a TimeoutError', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          const awk = ctx.awakeable<string>();
          try {
            await awk.promise.orTimeout(0);
            return 'resolved';
          } catch (e) {
            return e instanceof TimeoutError ? 'timeout' : 'other';
          }
        },
      },
    });
    const a = new MemoryAttempt({ target: { service: 's', handler: 'h' }, mode: 'service' });
    await createExecutor(new Registry([svc]), { logger: quiet }).run(a);
    expect(a.journal.map((e) => e.k)).toEqual(['awk', 'sleep', 'comb']);
    expect(a.journal[2]).toEqual({ k: 'comb', n: 'orTimeout', v: [1] });
    expect(a.calls.at(-1)).toMatchObject({
      kind: 'complete',
      outcome: { ok: true, value: '"timeout"' },
    });
  });

  it('journals a cancellation where it is observed and replays it at the same point', async () => {
    let compensations = 0;
    const obj = object({
      name: 'o',
      handlers: {
        h: async (ctx: ObjectContext) => {
          try {
            await ctx.sleep(60_000);
            return 'slept';
          } catch (e) {
            await ctx.run('compensate', () => ++compensations);
            throw e;
          }
        },
      },
    });
    const a = new MemoryAttempt({ target: { service: 'o', handler: 'h', key: 'k' } });
    const run = createExecutor(new Registry([obj]), { logger: quiet }).run(a);
    await until('the sleep to be committed', () => a.journal.length === 1);
    a.listener!.cancel();
    await run;
    expect(compensations).toBe(1);
    expect(a.journal).toEqual([
      { k: 'sleep', due: 1_060_000 },
      { k: 'signal', n: 'cancel', v: [0] },
      { k: 'run', n: 'compensate', v: 1 },
    ]);
    expect(a.calls.at(-1)).toMatchObject({
      kind: 'complete',
      outcome: { ok: false, error: { name: 'CancelledError', status: 409 } },
    });

    // Replay of the same journal: the recorded signal rejects the sleep again; the step is not re-run.
    const replay = new MemoryAttempt({
      target: { service: 'o', handler: 'h', key: 'k' },
      journal: a.journal,
    });
    await createExecutor(new Registry([obj]), { logger: quiet }).run(replay);
    expect(compensations).toBe(1);
    expect(replay.calls).toEqual([
      {
        kind: 'complete',
        from: 3,
        entries: [],
        outcome: {
          ok: false,
          error: expect.objectContaining({ name: 'CancelledError' }) as unknown,
        },
      },
    ]);
    expect(new CancelledError().errorCode).toBe(409);
  });
});
