import { describe, expect, it } from 'vitest';
import {
  TerminalError,
  handlers,
  object,
  service,
  type Context,
  type Entry,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { Registry, createExecutor } from '@latchkey/core/internal';
import { MemoryAttempt } from './memory-attempt.js';

const quiet = {
  ...console,
  log: () => undefined,
  warn: () => undefined,
  info: () => undefined,
} as Console;

async function attempt(
  def: ConstructorParameters<typeof Registry>[0][number],
  handler: string,
  init: Partial<ConstructorParameters<typeof MemoryAttempt>[0]> = {},
  inactivityTimeoutMs = 60_000,
): Promise<MemoryAttempt> {
  const a = new MemoryAttempt({
    target: { service: def.name, handler, ...(def.kind === 'service' ? {} : { key: 'k' }) },
    mode: def.kind === 'service' ? 'service' : 'exclusive',
    ...init,
  });
  const ex = createExecutor(new Registry([def]), { logger: quiet, inactivityTimeoutMs });
  await Promise.race([ex.run(a), a.ended]);
  await a.ended;
  return a;
}

describe('journal replay', () => {
  it('returns recorded run results on replay without executing the closure', async () => {
    let executed = 0;
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          const a = await ctx.run('a', () => {
            executed++;
            return 'fresh';
          });
          const b = await ctx.run('b', () => 'b-fresh');
          return `${a}/${b}`;
        },
      },
    });
    const a = await attempt(svc, 'h', { journal: [{ k: 'run', n: 'a', v: 'recorded' }] });
    expect(executed).toBe(0);
    const done = a.calls.at(-1);
    expect(done).toMatchObject({
      kind: 'complete',
      outcome: { ok: true, value: '"recorded/b-fresh"' },
    });
    expect(a.journal).toEqual([
      { k: 'run', n: 'a', v: 'recorded' },
      { k: 'run', n: 'b', v: 'b-fresh' },
    ]);
  });

  it('fails with a non-determinism error naming index, expected and actual, and commits nothing', async () => {
    const obj = object({
      name: 'o',
      handlers: {
        h: handlers.object.exclusive(
          { retryPolicy: { maxAttempts: 1, onMaxAttempts: 'kill' } },
          async (ctx: ObjectContext) => {
            ctx.set('y', 2);
            await ctx.run('b', () => 1);
            return 'unreachable';
          },
        ),
      },
    });
    const journal: Entry[] = [
      { k: 'set', n: 'x', v: 1 },
      { k: 'run', n: 'a', v: 1 },
    ];
    const a = await attempt(obj, 'h', { journal, state: new Map([['x', '1']]) });
    expect(a.calls).toHaveLength(1);
    const c = a.calls[0]!;
    expect(c.kind).toBe('complete');
    if (c.kind !== 'complete' || c.outcome.ok) throw new Error('expected a failed completion');
    expect(c.entries).toEqual([]);
    expect(c.outcome.error.code).toBe('NON_DETERMINISM');
    expect(c.outcome.error.message).toBe(
      'Non-determinism at journal index 0: expected set("x"), actual set("y")',
    );
    expect([...a.state]).toEqual([['x', '1']]);
  });

  it('batches state entries with the next step into one commit, in call order', async () => {
    const obj = object({
      name: 'o',
      handlers: {
        h: async (ctx: ObjectContext) => {
          const n = (await ctx.get<number>('n')) ?? 0;
          ctx.set('n', n + 1);
          await ctx.run('step', () => 'x');
          ctx.clear('old');
          return n + 1;
        },
      },
    });
    const a = await attempt(obj, 'h', {
      state: new Map([
        ['n', '41'],
        ['old', '"o"'],
      ]),
    });
    expect(a.calls.map((c) => c.kind)).toEqual(['commit', 'complete']);
    const [commit, complete] = a.calls;
    expect(commit).toMatchObject({
      from: 0,
      entries: [
        { k: 'get', n: 'n', v: 41 },
        { k: 'set', n: 'n', v: 42 },
        { k: 'run', n: 'step', v: 'x' },
      ],
      ops: [{ op: 'set', n: 'n', v: '42' }],
    });
    expect(complete).toMatchObject({
      from: 3,
      entries: [{ k: 'clear', n: 'old' }],
      outcome: { ok: true, value: '42' },
    });
    expect(a.state.get('n')).toBe('42');
    expect(a.state.has('old')).toBe(false);
  });

  it('commits concurrent steps in call order, whichever finishes first', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          const slow = ctx.run('slow', async () => {
            await gate;
            return 1;
          });
          const fast = ctx.run('fast', () => {
            release();
            return 2;
          });
          return (await slow) + (await fast);
        },
      },
    });
    const a = await attempt(svc, 'h');
    expect(a.journal.map((e) => ('n' in e ? e.n : e.k))).toEqual(['slow', 'fast']);
    expect(a.calls.at(-1)).toMatchObject({ kind: 'complete', outcome: { ok: true, value: '3' } });
  });

  it('records a TerminalError from a step and rethrows it on replay without running the closure', async () => {
    let executed = 0;
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          await ctx.run('pay', () => {
            executed++;
            throw new TerminalError('card declined', { errorCode: 402 });
          });
        },
      },
    });
    const first = await attempt(svc, 'h');
    expect(executed).toBe(1);
    expect(first.journal).toEqual([
      {
        k: 'run',
        n: 'pay',
        e: { name: 'TerminalError', code: 'TERMINAL', message: 'card declined', status: 402 },
      },
    ]);
    expect(first.calls.at(-1)).toMatchObject({
      kind: 'complete',
      outcome: { ok: false, error: { message: 'card declined', status: 402 } },
    });
    const replay = await attempt(svc, 'h', { journal: first.journal });
    expect(executed).toBe(1);
    expect(replay.calls.at(-1)).toMatchObject({
      kind: 'complete',
      outcome: { ok: false, error: { status: 402 } },
    });
  });

  it('fails the attempt with backoff when a step throws a retryable error, recording nothing', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          ctx.console.log('never printed in this test');
          await ctx.run('flaky', () => {
            throw new Error('boom');
          });
        },
      },
    });
    const a = await attempt(svc, 'h', { attempt: 3 });
    expect(a.calls).toEqual([
      {
        kind: 'retry',
        failure: { name: 'Error', code: 'INTERNAL', message: 'boom' },
        delayMs: 200,
      },
    ]);
    expect(a.journal).toEqual([]);
  });

  it('retries a step in process per its RunOptions, then records a TerminalError', async () => {
    let tries = 0;
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) =>
          ctx.run(
            'flaky',
            () => {
              tries++;
              throw new Error('still failing');
            },
            { maxRetryAttempts: 3, initialRetryInterval: 1 },
          ),
      },
    });
    const a = await attempt(svc, 'h');
    expect(tries).toBe(3);
    expect(a.journal).toHaveLength(1);
    expect(a.journal[0]).toMatchObject({ k: 'run', n: 'flaky', e: { name: 'TerminalError' } });
  });

  it('journals a sleep with its due time and suspends until it when the inactivity timeout is 0', async () => {
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          await ctx.sleep({ seconds: 3 }, 'nap');
          return 'woke';
        },
      },
    });
    const a = await attempt(svc, 'h', {}, 0);
    expect(a.journal).toEqual([{ k: 'sleep', n: 'nap', due: 1_003_000 }]);
    expect(a.calls.at(-1)).toMatchObject({ kind: 'suspend', wakeAt: 1_003_000, awaiting: [] });

    // Resumed after the due time: the replay passes the sleep and completes.
    const resumed = new MemoryAttempt({
      target: { service: 's', handler: 'h' },
      mode: 'service',
      journal: a.journal,
    });
    resumed.clock = 1_003_000;
    const ex = createExecutor(new Registry([svc]), { logger: quiet, inactivityTimeoutMs: 0 });
    await ex.run(resumed);
    expect(resumed.calls).toEqual([
      { kind: 'complete', from: 1, entries: [], outcome: { ok: true, value: '"woke"' } },
    ]);
  });

  it('refuses state writes in shared handlers', async () => {
    const obj = object({
      name: 'o',
      handlers: {
        peek: handlers.object.shared(async (ctx: ObjectSharedContext) => {
          (ctx as unknown as ObjectContext).set('x', 1);
        }),
      },
    });
    const a = new MemoryAttempt({
      target: { service: 'o', handler: 'peek', key: 'k' },
      mode: 'shared',
    });
    const ex = createExecutor(new Registry([obj]), { logger: quiet });
    await ex.run(a);
    expect(a.calls[0]).toMatchObject({ kind: 'retry', failure: { code: 'STATE_READ_ONLY' } });
  });

  it('draws the same random numbers for the same seed, other numbers for another seed', async () => {
    const seen: string[][] = [];
    const svc = service({
      name: 's',
      handlers: {
        h: async (ctx: Context) => {
          seen.push([String(ctx.rand.random()), ctx.rand.uuidv4()]);
        },
      },
    });
    await attempt(svc, 'h', { id: 'inv_00AAAAAAAAAAAAAAAAAAAA', seed: 'seed-one' });
    await attempt(svc, 'h', { id: 'inv_00AAAAAAAAAAAAAAAAAAAA', seed: 'seed-one' });
    await attempt(svc, 'h', { id: 'inv_00BBBBBBBBBBBBBBBBBBBB', seed: 'seed-two' });
    // The same invocation id with another seed: the id alone does not decide the numbers.
    await attempt(svc, 'h', { id: 'inv_00AAAAAAAAAAAAAAAAAAAA', seed: 'seed-three' });
    expect(seen[0]).toEqual(seen[1]);
    expect(seen[0]).not.toEqual(seen[2]);
    expect(seen[0]).not.toEqual(seen[3]);
    expect(seen[0]![1]).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe('PauseError and RetryableError', () => {
  it('pauses at once on a PauseError, and retries after retryAfter on a RetryableError', async () => {
    const { PauseError, RetryableError } = await import('@latchkey/core');
    const svc = service({
      name: 's',
      handlers: {
        pause: async () => {
          throw new PauseError('waiting for an operator');
        },
        later: async () => {
          throw new RetryableError('rate limited', { retryAfter: 1234 });
        },
      },
    });
    const p = await attempt(svc, 'pause');
    expect(p.calls).toEqual([
      {
        kind: 'pause',
        failure: { name: 'PauseError', code: 'PAUSED', message: 'waiting for an operator' },
      },
    ]);
    const r = await attempt(svc, 'later');
    expect(r.calls).toEqual([
      {
        kind: 'retry',
        failure: { name: 'RetryableError', code: 'RETRYABLE', message: 'rate limited' },
        delayMs: 1234,
      },
    ]);
  });
});
