/**
 * Direct mode (docs/PROTOCOL.md "Direct mode"): a deployment that reaches the engine's Redis
 * (`createEndpointHandler({ services, store })`; test/fixtures/deployment.mjs with LK_DIRECT=1, a
 * separate process) takes each pushed attempt over and runs it to its end through the store's
 * fenced scripts. Observed against the real Redis:
 * - a 3-step workflow costs one function invocation (Restate's request-response mode: one per
 *   step), each step run once; a workflow waiting on a promise and a sleep costs one invocation
 *   per wait plus one;
 * - the function SIGKILLed inside a step: the engine retries the attempt, the steps committed
 *   before keep their one result;
 * - the engine gives an attempt up (timeout) while the function still runs it: the old attempt is
 *   fenced, and its step's late result changes nothing; the retry's results are the only ones
 *   recorded.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { post, until } from './helpers/harness.js';
import { DEADLINE_MS, invokes, outcome, runs, pushSetup, submit } from './helpers/push.js';

/** Direct mode needs signed requests: the engine's key pair. */
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const DIRECT = {
  LK_DIRECT: '1',
  LK_IDENTITY_KEYS: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
};
const setup = pushSetup(inject('redisTarget'), {
  signingKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  fnEnv: DIRECT,
});

describe('push deployments, direct mode', () => {
  it('lets an attempt be taken over once: a replayed request is refused', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const store = env.engine.store;
    const id = await submit(env, '/pushflow/d-once/run', 'o');
    await outcome(env, id);
    const inv = {
      id,
      target: { service: 'pushflow', handler: 'run', key: 'd-once' },
      mode: 'workflow' as const,
      input: '"o"',
      headers: {},
      attempt: 1,
      journal: [],
      state: new Map<string, string>(),
      now: Date.now(),
      completions: new Map(),
      cancelRequested: false,
      seed: 'seed',
    };
    const handle = JSON.stringify({
      d: { i: id, s: 'pushflow', h: 'run', k: 'd-once', m: 'workflow' },
      e: '999',
    });
    const first = await store.adoptAttempt!(handle, inv);
    first.release();
    await expect(store.adoptAttempt!(handle, inv)).rejects.toThrow(/taken over already/);
    // And a handle naming another invocation than the request's is no handle of it.
    await expect(store.adoptAttempt!(handle, { ...inv, id: `${id}x` })).rejects.toThrow(
      /not a handle/,
    );
  });

  it('runs a 3-step workflow in one function invocation', async ({ onTestFinished }) => {
    const env = await setup(onTestFinished);
    const id = await submit(env, '/pushflow/d-1/run', 'x');
    const { value, journal } = await outcome(env, id);
    expect(value).toEqual({ a: 'a:x:1', b: 'b:x:1', c: 'c:x:1' });
    for (const s of ['a', 'b', 'c']) expect(await runs(env, id, s)).toBe(1);
    expect(journal.filter((e) => e.k === 'run')).toHaveLength(3);
    expect(invokes(env.fn, 'pushflow/run')).toBe(1);
    expect(await post(env.engine.url, '/pushflow/d-1/stage', undefined)).toMatchObject({
      status: 200,
      body: 'c',
    });
  });

  it('suspends on a promise and a sleep, one invocation per wait plus one', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const id = await submit(env, '/pushapproval/d-2/run', undefined);
    await until(
      'the workflow suspends on its promise',
      async () => (await env.engine.store.describe(id))?.status === 'suspended',
      DEADLINE_MS,
    );
    expect(await post(env.engine.url, '/pushapproval/d-2/approve', 'yes')).toMatchObject({
      status: 200,
      body: 'ok',
    });
    const { value } = await outcome(env, id);
    expect(value).toMatchObject({ verdict: 'yes' });
    expect((value as { slept: number }).slept).toBeGreaterThanOrEqual(300);
    expect(invokes(env.fn, 'pushapproval/run')).toBe(3);
  });

  it('retries a step whose function process was SIGKILLed; committed steps keep their result', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, { fnEnv: { LK_FAULT: 'in-run:b' } });
    const id = await submit(env, '/pushflow/d-crash/run', 'y');
    expect((await env.fn.exited).signal).toBe('SIGKILL');
    expect(env.fn.output).toContain('FAULT in-run:b');
    await env.spawnFn(DIRECT);
    const { value } = await outcome(env, id);
    expect(value).toEqual({ a: 'a:y:1', b: 'b:y:2', c: 'c:y:1' });
    expect(await runs(env, id, 'a')).toBe(1);
    expect(await runs(env, id, 'c')).toBe(1);
  });

  it('fences an attempt the engine gave up while the function ran it; its late step changes nothing', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, {
      fnEnv: { LK_SLOW_MS: '3000' },
      deployment: { timeoutMs: 1000 },
    });
    const id = await submit(env, '/pushslow/d-late/run', 'v');
    const { value, journal } = await outcome(env, id);
    // The first attempt's slow step is still running: its result comes after the retry's.
    expect(value).toEqual({ a: 'a:v:1', slow: 'slow:v:2', c: 'c:v:1' });
    // The given-up attempt found itself fenced (its lease renewal was refused) and answered; its
    // slow step's closure still returns, 3 s after it started, into an attempt that is over.
    await until(
      'both attempts answered and both slow closures returned',
      async () =>
        env.fn.output.filter((l) => l === 'ANSWERED pushslow/run').length === 2 &&
        (await runs(env, id, 'slow-returned')) === 2,
      DEADLINE_MS,
    );
    const after = await env.engine.store.describe(id, true);
    expect(after?.journal).toEqual(journal);
    expect(journal.filter((e) => e.k === 'run' && e.n === 'slow')).toHaveLength(1);
    expect(invokes(env.fn, 'pushslow/run')).toBe(2);
  });
});
