/**
 * The subscription saga end to end: a failing subscription rolls back exactly
 * what was created, in reverse order, each compensation its own durable step,
 * while `getStatus` answers during and after the run; a worker SIGKILLed in the
 * middle of the rollback — between two compensations, or inside one after it
 * took effect — is replaced and everything is still rolled back exactly once.
 *
 * Crash tests run workers as child processes (test/fixtures/worker.mjs with
 * ./fixtures/services.mjs) behind an ingress in this process.
 */
import { randomUUID } from 'node:crypto';
import { describe, inject, it, type ExpectStatic } from 'vitest';
import type { Entry, LatchkeyServer } from '@latchkey/core';
import { subscriptionSaga } from '../src/saga.js';
import {
  deletePrefix,
  get,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from '../../../test/helpers/harness.js';
import { redisBilling } from './fixtures/billing.mjs';
import { rawClient, type RawRedis } from '../../../test/helpers/redis.js';

const redisTarget = inject('redisTarget');
const RECOVERY_MS = 60_000;
/** The worker fixture, relative to test/fixtures/worker.mjs. */
const SERVICES = '../../examples/subscription-saga/test/fixtures/services.mjs';

interface Env {
  prefix: string;
  ingress: LatchkeyServer;
  redis: RawRedis;
  workers: WorkerProcess[];
  expect: ExpectStatic;
}

async function setup(
  onTestFinished: (fn: () => Promise<void>) => void,
  expect: ExpectStatic,
  opts: { workers: boolean },
): Promise<Env> {
  const prefix = newPrefix();
  const redis = rawClient(redisTarget);
  const billing = redisBilling(redisTarget, prefix);
  const env: Env = {
    prefix,
    redis,
    workers: [],
    expect,
    ingress: undefined as unknown as LatchkeyServer,
  };
  onTestFinished(async () => {
    await Promise.all(env.workers.map((w) => w.kill('SIGKILL').catch(() => undefined)));
    await env.ingress?.close().catch(() => undefined);
    billing.close();
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });
  env.ingress = await startServer(redisTarget, prefix, [subscriptionSaga(billing)], {
    workers: opts.workers,
  });
  return env;
}

async function worker(env: Env, fault?: string): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, env.prefix, {
    ...(fault ? { fault } : {}),
    env: { LK_SERVICES: SERVICES },
  });
  env.workers.push(w);
  return w;
}

/** Starts the saga for `user` (one-way); returns the invocation id. */
async function start(env: Env, user: string, products: string[]): Promise<string> {
  const r = await post(env.ingress.url, `/subscription/${user}/run/send`, {
    creditCard: '4242',
    products,
  });
  env.expect(r.status).toBe(202);
  return (r.body as { invocationId: string }).invocationId;
}

const status = async (env: Env, user: string): Promise<unknown> =>
  (await post(env.ingress.url, `/subscription/${user}/getStatus`)).body;

/** The billing provider's counters and live resources. */
async function billingState(env: Env): Promise<{ live: string[]; count: Record<string, string> }> {
  const live = (await env.redis.smembers(`${env.prefix}:billing:live`)).sort();
  const count = await env.redis.hgetall(`${env.prefix}:billing:count`);
  return { live, count };
}

/** Waits for the saga's result; expects the original failure. */
async function failed(env: Env, user: string): Promise<void> {
  const out = await get(env.ingress.url, `/restate/workflow/subscription/${user}/attach`);
  env.expect(out.status).toBe(409);
  env.expect(JSON.stringify(out.body)).toContain('unavailable cannot be subscribed to');
}

/** Names of the journaled steps, in order. */
async function steps(env: Env, invocationId: string): Promise<string[]> {
  const journal: Entry[] = (await env.ingress.store.describe(invocationId, true))!.journal!;
  return journal.flatMap((e) => (e.k === 'run' ? [e.n ?? ''] : []));
}

const newUser = (): string => `u${randomUUID().slice(0, 8)}`;

describe('subscription saga', () => {
  it('a failing subscription rolls back exactly what was created, in reverse; getStatus answers during and after', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: true });
    const user = newUser();
    const id = await start(env, user, ['news', 'gate', 'unavailable', 'films']);
    // During the run: the 'gate' subscription holds the saga until the test opens it.
    await until(
      'the saga to reach the gate',
      async () => (await env.redis.exists(`${env.prefix}:billing:at-gate`)) === 1,
    );
    expect(await status(env, user)).toBe('creating');
    expect((await billingState(env)).live).toEqual([`pay-${user}`, `sub-${user}-news`]);
    await env.redis.set(`${env.prefix}:billing:open`, '1');

    await failed(env, user);
    expect(await status(env, user)).toBe('rolled_back');
    const { live, count } = await billingState(env);
    expect(live).toEqual([]);
    const created = [`pay-${user}`, `sub-${user}-news`, `sub-${user}-gate`];
    // Exactly what was created was removed, each once; 'films' was never touched.
    expect(
      Object.keys(count)
        .filter((k) => k.startsWith('create:'))
        .sort(),
    ).toEqual(created.map((c) => `create:${c}`).sort());
    expect(
      Object.keys(count)
        .filter((k) => k.startsWith('remove:'))
        .sort(),
    ).toEqual(created.map((c) => `remove:${c}`).sort());
    expect(Object.values(count).every((v) => v === '1')).toBe(true);
    expect(count[`calls:remove:sub-${user}-unavailable`]).toBe('1'); // registered before its step: a harmless no-op
    expect(count[`calls:remove:sub-${user}-films`]).toBeUndefined();
    expect(await steps(env, id)).toEqual([
      'create recurring payment',
      'subscribe news',
      'subscribe gate',
      'subscribe unavailable',
      'remove subscription unavailable',
      'remove subscription gate',
      'remove subscription news',
      'remove recurring payment',
    ]);
  });

  it('a worker SIGKILLed between two compensations: the next worker finishes the rollback, each step once', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: false });
    const user = newUser();
    const w1 = await worker(env, 'after-commit:remove subscription music');
    await start(env, user, ['news', 'music', 'unavailable']);
    expect((await w1.exited).signal).toBe('SIGKILL');
    expect(w1.output).toContain('FAULT after-commit:remove subscription music');
    // Mid-rollback: music is gone, news and the payment are not.
    expect((await billingState(env)).live).toEqual([`pay-${user}`, `sub-${user}-news`]);

    await worker(env);
    await until(
      'the rollback to finish',
      async () => (await status(env, user)) === 'rolled_back',
      RECOVERY_MS,
    );
    await failed(env, user);
    const { live, count } = await billingState(env);
    expect(live).toEqual([]);
    for (const id of [`pay-${user}`, `sub-${user}-news`, `sub-${user}-music`]) {
      expect(count[`remove:${id}`], id).toBe('1');
      expect(count[`calls:remove:${id}`], id).toBe('1'); // no compensation ran twice
    }
  });

  it('a worker SIGKILLed inside a compensation after it took effect: the retry changes nothing twice', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: false });
    const user = newUser();
    const fault = `in-run:remove sub-${user}-news`;
    const w1 = await worker(env, fault);
    await start(env, user, ['news', 'music', 'unavailable']);
    expect((await w1.exited).signal).toBe('SIGKILL');
    expect(w1.output).toContain(`FAULT ${fault}`);
    expect((await billingState(env)).live).toEqual([`pay-${user}`]);

    await worker(env);
    await until(
      'the rollback to finish',
      async () => (await status(env, user)) === 'rolled_back',
      RECOVERY_MS,
    );
    await failed(env, user);
    const { live, count } = await billingState(env);
    expect(live).toEqual([]);
    for (const id of [`pay-${user}`, `sub-${user}-news`, `sub-${user}-music`])
      expect(count[`remove:${id}`], id).toBe('1');
    expect(count[`calls:remove:sub-${user}-news`]).toBe('2'); // the interrupted step ran again, harmlessly
    expect(count[`calls:remove:sub-${user}-music`]).toBe('1');
    expect(count[`calls:remove:pay-${user}`]).toBe('1');
  });
});
