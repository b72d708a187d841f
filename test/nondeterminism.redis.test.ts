/**
 * Determinism is checked: a retry whose handler asks for different context calls
 * than the journal recorded fails with a NonDeterminismError naming the index,
 * the expected and the actual entry, and commits nothing of the diverging attempt.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  handlers,
  object,
  type HandlerDefinitionOptions,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { deletePrefix, newPrefix, post, startServer } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

/** Attempt 2 ends the invocation: the non-determinism failure is not retried forever. */
const killAfterTwo: HandlerDefinitionOptions = {
  retryPolicy: { maxAttempts: 2, onMaxAttempts: 'kill', initialInterval: 10 },
};

/** Closure executions per (handler, key), to show what attempt 2 did and did not run. */
const executed = new Map<string, number>();
const note = (what: string): string => {
  executed.set(what, (executed.get(what) ?? 0) + 1);
  return what;
};

const drifting = object({
  name: 'drifting',
  handlers: {
    /** Attempt 1: set x, run a, fail. Attempt 2: set y first -> diverges at index 0 (set "x" vs set "y"). */
    stateDrift: handlers.object.exclusive(killAfterTwo, async (ctx: ObjectContext) => {
      if (ctx.request().attempt === 1) {
        ctx.set('x', 1);
        await ctx.run('a', () => note(`a:${ctx.key}`));
        throw new Error('transient failure of attempt 1');
      }
      ctx.set('y', 2);
      await ctx.run('b', () => note(`b:${ctx.key}`));
      return 'attempt 2 finished';
    }),
    /** Attempt 2 replays set x, then asks for run "b" where run "a" was recorded -> index 1. */
    stepDrift: handlers.object.exclusive(killAfterTwo, async (ctx: ObjectContext) => {
      ctx.set('x', 1);
      const step = ctx.request().attempt === 1 ? 'a' : 'b';
      await ctx.run(step, () => note(`${step}:${ctx.key}`));
      if (ctx.request().attempt === 1) throw new Error('transient failure of attempt 1');
      ctx.set('y', 2);
      return 'attempt 2 finished';
    }),
    /** Attempt 2 sleeps where run "a" was recorded -> index 1, expected run("a"), actual sleep. */
    kindDrift: handlers.object.exclusive(killAfterTwo, async (ctx: ObjectContext) => {
      ctx.set('x', 1);
      if (ctx.request().attempt === 1) {
        await ctx.run('a', () => note(`a:${ctx.key}`));
        throw new Error('transient failure of attempt 1');
      }
      await ctx.sleep(10);
      ctx.set('y', 2);
      return 'attempt 2 finished';
    }),
    /** Attempt 2 catches the NonDeterminismError of its diverging call and returns normally. */
    swallow: handlers.object.exclusive(killAfterTwo, async (ctx: ObjectContext) => {
      if (ctx.request().attempt === 1) {
        ctx.set('x', 1);
        await ctx.run('a', () => note(`a:${ctx.key}`));
        throw new Error('transient failure of attempt 1');
      }
      try {
        ctx.set('y', 2);
      } catch {
        // user code must not be able to hide a divergence
      }
      return 'swallowed';
    }),
    peek: handlers.object.shared(async (ctx: ObjectSharedContext) => ({
      keys: await ctx.stateKeys(),
      x: await ctx.get<number>('x'),
      y: await ctx.get<number>('y'),
    })),
  },
});

describe('non-determinism is detected on replay', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, [drifting]);
  });
  afterAll(async () => {
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  async function callAndCheck(
    handler: string,
    key: string,
    expected: { index: number; expected: string; actual: string },
  ): Promise<string> {
    const r = await post(server.url, `/drifting/${key}/${handler}`);
    const id = r.headers.get('x-restate-id');
    expect(id).toMatch(/^inv_/);
    expect(r.status).toBe(500);
    const body = r.body as { code: number; errorCode: string; message: string };
    expect(body.errorCode).toBe('NON_DETERMINISM');
    expect(body.message).toBe(
      `Non-determinism at journal index ${expected.index}: expected ${expected.expected}, actual ${expected.actual}`,
    );

    const info = await server.store.describe(id!, true);
    expect(info?.status).toBe('completed');
    // Attempt 1 failed with its retryable error; attempt 2 diverged and ended the invocation.
    expect(info?.lastFailure?.message).toBe('transient failure of attempt 1');
    expect(info?.outcome).toMatchObject({
      ok: false,
      error: { code: 'NON_DETERMINISM', name: 'NonDeterminismError' },
    });
    return id!;
  }

  it('fails when a retry writes different state first (index 0), keeping only what attempt 1 committed', async () => {
    const id = await callAndCheck('stateDrift', 's1', {
      index: 0,
      expected: 'set("x")',
      actual: 'set("y")',
    });
    // Nothing of attempt 2 was committed: the journal holds attempt 1's entries only...
    const info = await server.store.describe(id, true);
    expect(info?.journal).toEqual([
      { k: 'set', n: 'x', v: 1 },
      { k: 'run', n: 'a', v: 'a:s1' },
    ]);
    // ...the state is exactly x = 1...
    expect([...(await server.store.getState('drifting', 's1'))]).toEqual([['x', '1']]);
    expect((await post(server.url, '/drifting/s1/peek')).body).toEqual({
      keys: ['x'],
      x: 1,
      y: null,
    });
    // ...and attempt 2 stopped at the divergence: its step never ran.
    expect(executed.get('a:s1')).toBe(1);
    expect(executed.get('b:s1')).toBeUndefined();
  });

  it('fails when a retry runs a differently named step (index 1)', async () => {
    const id = await callAndCheck('stepDrift', 's2', {
      index: 1,
      expected: 'run("a")',
      actual: 'run("b")',
    });
    const info = await server.store.describe(id, true);
    expect(info?.journal).toEqual([
      { k: 'set', n: 'x', v: 1 },
      { k: 'run', n: 'a', v: 'a:s2' },
    ]);
    expect([...(await server.store.getState('drifting', 's2'))]).toEqual([['x', '1']]);
    expect((await post(server.url, '/drifting/s2/peek')).body).toEqual({
      keys: ['x'],
      x: 1,
      y: null,
    });
    expect(executed.get('a:s2')).toBe(1);
    expect(executed.get('b:s2')).toBeUndefined();
  });

  it('fails when a retry sleeps where a step was recorded (kind mismatch)', async () => {
    const id = await callAndCheck('kindDrift', 's3', {
      index: 1,
      expected: 'run("a")',
      actual: 'sleep',
    });
    const info = await server.store.describe(id, true);
    expect(info?.journal).toEqual([
      { k: 'set', n: 'x', v: 1 },
      { k: 'run', n: 'a', v: 'a:s3' },
    ]);
    expect([...(await server.store.getState('drifting', 's3'))]).toEqual([['x', '1']]);
    expect((await post(server.url, '/drifting/s3/peek')).body).toEqual({
      keys: ['x'],
      x: 1,
      y: null,
    });
  });

  it('fails even when the handler catches the NonDeterminismError', async () => {
    await callAndCheck('swallow', 's4', { index: 0, expected: 'set("x")', actual: 'set("y")' });
    expect([...(await server.store.getState('drifting', 's4'))]).toEqual([['x', '1']]);
  });
});
