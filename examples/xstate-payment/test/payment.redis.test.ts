/**
 * The payment machine as a durable virtual object, end to end against Redis:
 * a delayed transition survives a worker restart and never fires early; a
 * promise actor whose worker dies midway is retried to success; concurrent
 * events to one key are applied one at a time in acceptance order; promise
 * failures reach the machine as retries or as its error event; a timeout wins
 * over a slow promise whose late result is then ignored.
 *
 * Crash tests run the workers as child processes (test/fixtures/worker.mjs with
 * ./fixtures/services.mjs) behind an ingress in this process; the others run
 * everything in this process.
 */
import { randomUUID } from 'node:crypto';
import { describe, inject, it, type ExpectStatic } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { paymentObject, type PaymentContext } from '../src/payment.js';
import {
  deletePrefix,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from '../../../test/helpers/harness.js';
import { redisGateway } from './fixtures/gateway.mjs';
import { rawClient, type RawRedis } from '../../../test/helpers/redis.js';

const redisTarget = inject('redisTarget');

/** Deadline for anything that waits on recovery after a SIGKILL (lease 2 s + reconciler) on a loaded machine. */
const RECOVERY_MS = 60_000;
/** The worker fixture, relative to test/fixtures/worker.mjs. */
const SERVICES = '../../examples/xstate-payment/test/fixtures/services.mjs';

interface Snapshot {
  status: string;
  value: unknown;
  context: PaymentContext;
  tags: string[];
}

interface Env {
  prefix: string;
  ingress: LatchkeyServer;
  redis: RawRedis;
  workers: WorkerProcess[];
  expect: ExpectStatic;
}

type OnFinished = (fn: () => Promise<void>) => void;

/** A fresh prefix and an ingress (with in-process workers unless `workers: false`); torn down after the test. */
async function setup(
  onTestFinished: OnFinished,
  expect: ExpectStatic,
  opts: { workers: boolean },
): Promise<Env> {
  const prefix = newPrefix();
  const redis = rawClient(redisTarget);
  const gateway = redisGateway(redisTarget, prefix);
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
    gateway.close();
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });
  env.ingress = await startServer(redisTarget, prefix, [paymentObject(gateway)], {
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

/** Calls a handler of `payment/<key>` and expects 200. */
async function call(env: Env, key: string, handler: string, body?: unknown): Promise<Snapshot> {
  const r = await post(env.ingress.url, `/payment/${key}/${handler}`, body);
  env.expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as Snapshot;
}

/** The committed snapshot, read from Redis directly (works while no worker runs). */
async function committed(env: Env, key: string): Promise<Snapshot> {
  const raw = (await env.ingress.store.getState('payment', key)).get('snapshot');
  if (raw === undefined) throw new Error(`no snapshot for ${key}`);
  return JSON.parse(raw) as Snapshot;
}

/** A counter of the test gateway (attempts:<order>, done:<order>). */
async function gateway(env: Env, field: string): Promise<number> {
  return Number((await env.redis.hget(`${env.prefix}:gateway`, field)) ?? 0);
}

const newKey = (): string => `pay-${randomUUID().slice(0, 8)}`;

describe('XState payment flow as a durable virtual object', () => {
  it('a delayed transition (after) fires after a worker restart, and not before it is due', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: false });
    const key = newKey();
    const DELAY = 4000;
    const w1 = await worker(env);
    const t0 = Date.now();
    const created = await call(env, key, 'create', {
      input: { orderId: 'o-1', amount: 5, confirmWithinMs: DELAY },
    });
    expect(created.value).toBe('awaitingConfirmation');
    await w1.kill('SIGKILL');
    const killedAt = Date.now();
    // The worker that scheduled the timer died before it was due: only a durable timer can fire now.
    expect(killedAt).toBeLessThan(t0 + DELAY);
    await worker(env);
    const reads: Array<{ endedAt: number; value: unknown }> = [];
    const final = await until(
      'the payment to expire',
      async () => {
        const s = await committed(env, key);
        reads.push({ endedAt: Date.now(), value: s.value });
        return s.status === 'done' ? s : undefined;
      },
      RECOVERY_MS,
    );
    expect(final.value).toBe('expired');
    // Every read that finished before the timer was due still saw the waiting state.
    const early = reads.filter((r) => r.endedAt < t0 + DELAY);
    expect(
      early.every((r) => r.value === 'awaitingConfirmation'),
      JSON.stringify(early),
    ).toBe(true);
    expect(reads.at(-1)!.endedAt).toBeGreaterThanOrEqual(t0 + DELAY);
  });

  it('a promise actor whose worker dies midway is retried, and its result reaches the machine once', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: false });
    const key = newKey();
    const orderId = `crash-${key}`;
    const w1 = await worker(env, 'in-run:charge');
    await call(env, key, 'create', { input: { orderId, amount: 9 } });
    const confirmed = await call(env, key, 'send', { event: { type: 'CONFIRM' } });
    expect(confirmed.value).toBe('charging');
    // The charge started on w1, which died inside it.
    const { signal } = await w1.exited;
    expect(signal).toBe('SIGKILL');
    expect(w1.output).toContain('FAULT in-run:charge');
    expect(await gateway(env, `attempts:${orderId}`)).toBe(1);
    expect(await gateway(env, `done:${orderId}`)).toBe(0);
    expect((await committed(env, key)).value).toBe('charging');

    await worker(env);
    const final = await call(env, key, 'waitFor', { condition: 'done', timeout: RECOVERY_MS });
    expect(final.value).toBe('paid');
    expect(final.context.receiptId).toBe('rcpt-2'); // the charge of the second attempt
    expect(await gateway(env, `attempts:${orderId}`)).toBe(2);
    expect(await gateway(env, `done:${orderId}`)).toBe(1);
    expect(await call(env, key, 'snapshot')).toEqual(final);
  });

  it('events sent concurrently to one key are applied one at a time, in acceptance order', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: true });
    const key = newKey();
    await call(env, key, 'create', { input: { orderId: 'o-3', amount: 1 } });
    // Ten calls at once: each answer shows the notes applied so far, ending with its own.
    const texts = Array.from({ length: 10 }, (_, i) => `note-${i}`);
    const answers = await Promise.all(
      texts.map((text) => call(env, key, 'send', { event: { type: 'NOTE', text } })),
    );
    const all = (await call(env, key, 'snapshot')).context.notes;
    expect([...all].sort()).toEqual([...texts].sort()); // none lost, none twice
    answers.forEach((a, i) => {
      expect(a.context.notes.at(-1)).toBe(texts[i]);
      expect(all.slice(0, a.context.notes.length)).toEqual(a.context.notes); // each saw a prefix: serial application
    });
    // One-way sends, each accepted before the next is sent, are applied in that order.
    for (const text of ['first', 'second', 'third']) {
      const r = await post(env.ingress.url, `/payment/${key}/send/send`, {
        event: { type: 'NOTE', text },
      });
      expect(r.status).toBe(202);
    }
    const notes = await until('the one-way notes to be applied', async () => {
      const n = (await committed(env, key)).context.notes;
      return n.length === 13 ? n : undefined;
    });
    expect(notes.slice(10)).toEqual(['first', 'second', 'third']);
  });

  it('a failing promise is retried; a TerminalError from it becomes the error event', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: true });
    const flaky = newKey();
    const declined = newKey();
    await call(env, flaky, 'create', { input: { orderId: `flaky-${flaky}`, amount: 3 } });
    await call(env, declined, 'create', { input: { orderId: `declined-${declined}`, amount: 4 } });
    await call(env, flaky, 'send', { event: { type: 'CONFIRM' } });
    await call(env, declined, 'send', { event: { type: 'CONFIRM' } });

    const paid = await call(env, flaky, 'waitFor', { condition: 'done', timeout: 30_000 });
    expect(paid.value).toBe('paid');
    expect(await gateway(env, `attempts:flaky-${flaky}`)).toBe(2);
    expect(await gateway(env, `done:flaky-${flaky}`)).toBe(1);

    const failed = await call(env, declined, 'waitFor', { condition: 'done', timeout: 30_000 });
    expect(failed.value).toBe('failed');
    expect(failed.context.failure).toBe('card declined');
    expect(await gateway(env, `attempts:declined-${declined}`)).toBe(1); // terminal: not retried
  });

  it('the charge timeout wins over a slow charge, whose late result is then ignored', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect, { workers: true });
    const key = newKey();
    const orderId = `slow-${key}`; // the test gateway takes 4 s
    const TIMEOUT = 1000;
    await call(env, key, 'create', { input: { orderId, amount: 8, chargeWithinMs: TIMEOUT } });
    const t0 = Date.now();
    await call(env, key, 'send', { event: { type: 'CONFIRM' } });
    const final = await call(env, key, 'waitFor', { condition: 'done', timeout: 30_000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TIMEOUT);
    expect(final.value).toBe('timedOut');
    // The charge still completes, and its result is delivered (to _settle) and dropped.
    await until(
      'the slow charge to finish',
      async () => (await gateway(env, `done:${orderId}`)) === 1,
      30_000,
    );
    await until(
      'the late result to be delivered',
      async () =>
        (await env.ingress.store.list({ service: 'payment', key })).invocations.some(
          (i) => i.target.handler === '_settle' && i.status === 'completed',
        ),
      30_000,
    );
    const after = await call(env, key, 'snapshot');
    expect(after.value).toBe('timedOut');
    expect(after.context.receiptId).toBeNull();
  });
});
