/**
 * Push deployments (docs/PROTOCOL.md): handlers on a separate Node process serving
 * `createEndpointHandler` over HTTP (test/fixtures/deployment.mjs, with no store of its own),
 * registered with an engine (`serve({ deployments })`) whose ingress and workers run in this
 * process against the real Redis. Observed:
 * - the examples' flows run on the deployment: a 3-step workflow (one function invocation per
 *   step plus one to finish), object state, a durable promise and a sleep, calls to the engine's
 *   own workers, between the deployment's services and to another deployment's, an awakeable
 *   resolved from outside; state over the eager size goes by name and is sent when read;
 * - the function process SIGKILLed inside a step: the attempt is retried on a restarted one, every
 *   committed step keeps its one result; killed inside one of eight concurrent adds, the counter
 *   stays exact;
 * - 429 with `Retry-After` and 503: retried no earlier than asked, then completed;
 * - an answer later than the deployment's timeout: the engine stops waiting and retries the
 *   attempt; the step's recorded result is the retry's (the late answer is never read);
 * - signed requests: a deployment given the engine's public key runs only what the engine signed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { post, until } from './helpers/harness.js';
import { DEADLINE_MS, invokes, outcome, runs, pushSetup, submit } from './helpers/push.js';

const setup = pushSetup(inject('redisTarget'));

describe('push deployments', () => {
  it('runs a 3-step workflow on the function, one invocation per step plus one to finish', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, { admin: true });
    const id = await submit(env, '/pushflow/wf-1/run', 'x');
    const { value, journal } = await outcome(env, id);
    expect(value).toEqual({ a: 'a:x:1', b: 'b:x:1', c: 'c:x:1' });
    for (const s of ['a', 'b', 'c']) expect(await runs(env, id, s)).toBe(1);
    expect(journal.filter((e) => e.k === 'run').map((e) => (e as { n: string }).n)).toEqual([
      'a',
      'b',
      'c',
    ]);
    expect(invokes(env.fn, 'pushflow/run')).toBe(4);
    // Its attempt is measured as a local one is.
    const metrics = await (await fetch(`${env.engine.adminUrl}/metrics`)).text();
    expect(metrics).toContain(
      'latchkey_attempt_duration_seconds_count{service="pushflow",handler="run",outcome="completed"} 1',
    );
    // Its state went through the engine: a shared handler (also on the function) reads it.
    const stage = await post(env.engine.url, '/pushflow/wf-1/stage', undefined);
    expect(stage).toMatchObject({ status: 200, body: 'c' });
  });

  it('keeps object state exact, and reaches the engine’s workers and other services', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const adds = await Promise.all(
      Array.from({ length: 5 }, () => post(env.engine.url, '/pushcounter/k1/add', 2)),
    );
    expect(adds.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(adds.map((r) => r.body as number).sort((a, b) => a - b)).toEqual([2, 4, 6, 8, 10]);
    expect(await post(env.engine.url, '/pushcounter/k1/get', undefined)).toMatchObject({
      body: 10,
    });

    const id = await submit(env, '/pushcaller/run', 'ada');
    const awk = await until(
      'the awakeable is announced',
      async () => (await env.redis.get(`${env.prefix}:fx:awk:ada`)) ?? undefined,
      DEADLINE_MS,
    );
    const resolved = await post(env.engine.url, `/restate/awakeables/${awk}/resolve`, 'yes');
    expect(resolved.status).toBe(202);
    const { value } = await outcome(env, id);
    expect(value).toEqual({ greeting: 'hello ada', count: 1, answer: 'yes' });
  });

  it('calls a service of another deployment', async ({ onTestFinished }) => {
    const env = await setup(onTestFinished, { other: 'push-other.mjs' });
    const r = await post(env.engine.url, '/pushrelay/run', 'hi');
    expect(r).toMatchObject({ status: 200, body: 'relayed:echo:hi' });
    expect(invokes(env.other!, 'pushecho/echo')).toBeGreaterThanOrEqual(2);
  });

  it('keeps a counter exact when the function is SIGKILLed inside an add', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, { fnEnv: { LK_FAULT: 'in-run:add' } });
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, i) => submit(env, '/pushcounter/exact/add', i + 1)),
    );
    expect((await env.fn.exited).signal).toBe('SIGKILL');
    await env.spawnFn();
    const values = await Promise.all(ids.map(async (id) => (await outcome(env, id)).value));
    // Each add saw the sum of those before it: 8 distinct partial sums, the last one 36.
    expect(new Set(values).size).toBe(8);
    expect(Math.max(...(values as number[]))).toBe(36);
    expect(await post(env.engine.url, '/pushcounter/exact/get', undefined)).toMatchObject({
      body: 36,
    });
    // One closure ran in the killed process and again after: 9 executions for 8 adds.
    expect(Number(await env.redis.get(`${env.prefix}:fx:pushcounter:exact:runs`))).toBe(9);
  });

  it('sends state over the eager size by name, and the value when the handler reads it', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, { deployment: { eagerStateBytes: 0 } });
    expect(await post(env.engine.url, '/pushcounter/lazy/add', 2)).toMatchObject({ body: 2 });
    // No state yet: the step, then the completion.
    expect(invokes(env.fn, 'pushcounter/add')).toBe(2);
    expect(await post(env.engine.url, '/pushcounter/lazy/add', 3)).toMatchObject({ body: 5 });
    // `count` went by name: the read asked for it, then the step, then the completion.
    expect(invokes(env.fn, 'pushcounter/add')).toBe(5);
  });

  it('waits on a durable promise and sleeps no less than asked', async ({ onTestFinished }) => {
    const env = await setup(onTestFinished);
    const id = await submit(env, '/pushapproval/p-1/run', undefined);
    await until(
      'the workflow suspends on its promise',
      async () => (await env.engine.store.describe(id))?.status === 'suspended',
      DEADLINE_MS,
    );
    const approved = await post(env.engine.url, '/pushapproval/p-1/approve', 'granted');
    expect(approved).toMatchObject({ status: 200, body: 'ok' });
    const { value } = await outcome(env, id);
    expect(value).toMatchObject({ verdict: 'granted' });
    expect((value as { slept: number }).slept).toBeGreaterThanOrEqual(300);
  });

  it('retries a step whose function process was SIGKILLed; committed steps keep their result', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, { fnEnv: { LK_FAULT: 'in-run:b' } });
    const id = await submit(env, '/pushflow/wf-crash/run', 'y');
    const { signal } = await env.fn.exited;
    expect(signal).toBe('SIGKILL');
    expect(env.fn.output).toContain('FAULT in-run:b');
    await env.spawnFn();
    const { value } = await outcome(env, id);
    // Step b's closure ran twice (the first run died with its process), a and c once each.
    expect(value).toEqual({ a: 'a:y:1', b: 'b:y:2', c: 'c:y:1' });
    expect(await runs(env, id, 'a')).toBe(1);
    expect(await runs(env, id, 'b')).toBe(2);
  });

  it('honours 429 Retry-After and retries 503', async ({ onTestFinished }) => {
    const env = await setup(onTestFinished, { fnEnv: { LK_HTTP_FAULT: 'status:429:1:1' } });
    const t0 = Date.now();
    const id = await submit(env, '/pushflow/wf-429/run', 'z');
    const { value } = await outcome(env, id);
    expect(value).toEqual({ a: 'a:z:1', b: 'b:z:1', c: 'c:z:1' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const info = await env.engine.store.inspect?.(id);
    expect(info?.failure?.error.message ?? '').toContain('429');

    const env2 = await setup(onTestFinished, { fnEnv: { LK_HTTP_FAULT: 'status:503:2' } });
    const id2 = await submit(env2, '/pushflow/wf-503/run', 'w');
    expect((await outcome(env2, id2)).value).toEqual({ a: 'a:w:1', b: 'b:w:1', c: 'c:w:1' });
    expect(invokes(env2.fn, 'pushflow/run')).toBe(6);
  });

  it('retries a request answered later than the timeout; the retry’s step result is the one recorded', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished, {
      fnEnv: { LK_HTTP_FAULT: 'late:2500:1' },
      deployment: { timeoutMs: 1000 },
    });
    const id = await submit(env, '/pushflow/wf-late/run', 'v');
    const { value, journal } = await outcome(env, id);
    await until(
      'the late answer is sent',
      () => env.fn.output.includes('LATE ANSWER SENT'),
      DEADLINE_MS,
    );
    // Step a ran in the timed-out request and again in the retry; the retry's result is the one
    // committed, once.
    expect(await runs(env, id, 'a')).toBe(2);
    expect(value).toEqual({ a: 'a:v:2', b: 'b:v:1', c: 'c:v:1' });
    expect(journal.filter((e) => e.k === 'run' && e.n === 'a')).toHaveLength(1);
  });

  it('runs only requests signed by the engine when the function has its public key', async ({
    onTestFinished,
  }) => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const env = await setup(onTestFinished, {
      fnEnv: { LK_IDENTITY_KEYS: pubBase64(pub) },
      signingKey: priv,
    });
    const id = await submit(env, '/pushflow/wf-signed/run', 's');
    expect((await outcome(env, id)).value).toEqual({ a: 'a:s:1', b: 'b:s:1', c: 'c:s:1' });

    // An unsigned request, as anyone who learns the URL could send it: refused, nothing runs.
    const forged = await fetch(`http://127.0.0.1:${env.port}/invoke/pushflow/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.latchkey.invoke.v1+json' },
      body: '{}',
    });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ code: 401, errorCode: 'UNAUTHORIZED' });
  });
});

/** A PEM public key as base64 SPKI (what an environment variable holds comfortably). */
function pubBase64(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
}
