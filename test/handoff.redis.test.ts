/**
 * The cheap hand-off (ARCHITECTURE.md "Mailbox: BullMQ delivers, Redis decides"): an ingress
 * without workers wakes a worker of another process with one sharded pub/sub message, not a
 * BullMQ job. Observed on the real Redis:
 * - invocations accepted by an ingress-only process run on worker processes, and no mailbox job is
 *   ever added for them (BullMQ's own event stream says so); the accept script published the
 *   hand-offs itself;
 * - a worker SIGKILLed right after a hand-off lease reached it costs time only: the lease
 *   expires, the reconciler dispatches the invocation again and every closure ran exactly once;
 * - a worker with no free slot hands the lease back and adds a mailbox job, and once it announced
 *   no free slot, nobody hands it anything;
 * - a completion that an ingress-only process delivers to a suspended invocation wakes it by a
 *   hand-off too.
 */
import { describe, expect, inject, it } from 'vitest';
import { handlers, service, type Context } from '@latchkey/core';
import { Keys, type RedisStoreOptions } from '@latchkey/redis-store';
import { services } from './fixtures/crash-services.mjs';
import { startMonitor } from './helpers/monitor.js';
import { get, post, until, type WorkerProcess } from './helpers/harness.js';
import {
  RECOVERY_MS,
  addedJobs,
  announced,
  completed,
  server,
  setup,
  worker as spawn,
  type HandoffEnv as Env,
} from './helpers/handoff.js';

const redisTarget = inject('redisTarget');
const ENV = { LK_SERVICES: 'crash-services.mjs' };

function worker(env: Env, fault?: string): Promise<WorkerProcess> {
  return spawn(env, { env: ENV, ...(fault ? { fault } : {}) });
}

async function closureRuns(env: Env, id: string, name: string): Promise<number> {
  return Number(await env.redis.get(`${env.prefix}:fx:${id}:${name}`));
}

describe('the hand-off from an ingress-only process', () => {
  it('runs its invocations on worker processes without a mailbox job', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    await worker(env);
    await worker(env);
    await announced(env, 2);
    // Calls stay with the accept script's lease, not delegated (see delegate.redis.test.ts).
    const ingress = await server(env, services, {
      workers: false,
      store: { delegateAccepts: false },
    });
    const mon = await startMonitor(redisTarget);
    onTestFinished(() => Promise.resolve(mon.close()));

    const N = 20;
    const calls = await Promise.all(
      Array.from({ length: N }, (_, i) => post(ingress.url, '/stally/work', `h${i}`)),
    );
    const ids = calls.map((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`done:h${i}:1`);
      return r.headers.get('x-restate-id')!;
    });
    // Exclusive adds on one key: the first is handed off, the others follow through the inbox.
    const adds = await Promise.all(
      Array.from({ length: N }, () => post(ingress.url, '/counter/handoff/add', 1)),
    );
    expect(adds.map((r) => r.body).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: N }, (_, i) => i + 1),
    );
    expect((await post(ingress.url, '/counter/handoff/get')).body).toBe(N);

    // No mailbox job was added for any of them...
    const jobs = await addedJobs(env);
    for (const r of [...calls, ...adds])
      expect(jobs.has(r.headers.get('x-restate-id')!)).toBe(false);
    // ...each call's accept script published its hand-off itself, on its partition's channel,
    // and both worker processes took some.
    await mon.caughtUp();
    const handoffs = mon.commands.filter(
      (c) =>
        c.source === 'lua' &&
        c.args[0]!.toLowerCase() === 'spublish' &&
        c.args[1]!.includes('}:hand:'),
    );
    const channels = new Map<string, string>();
    // A lease message: 'L<epoch>\n<now>\n<start JSON>\n<state>\n<input>'.
    for (const c of handoffs) {
      const msg = c.args[2]!;
      expect(msg[0]).toBe('L');
      channels.set((JSON.parse(msg.split('\n')[2]!) as { i: string }).i, c.args[1]!);
    }
    const workersUsed = new Set<string>();
    for (const id of ids) {
      const ch = channels.get(id);
      expect(ch).toBeDefined();
      const p = parseInt(id.slice(4, 6), 36);
      expect(ch!.startsWith(`${new Keys(env.prefix).part(p)}hand:`)).toBe(true);
      workersUsed.add(ch!.slice(ch!.lastIndexOf(':') + 1));
      expect(await closureRuns(env, id, 'work')).toBe(1);
    }
    expect(workersUsed.size).toBe(2);

    // Above 64 KiB of input the message is only a wake-up: the worker's start script leases it.
    const big = 'x'.repeat(70_000);
    const r = await post(ingress.url, '/stally/work', big);
    expect(r.body).toBe(`done:${big}:1`);
    const bigId = r.headers.get('x-restate-id')!;
    await mon.caughtUp();
    const wake = mon.commands.find(
      (c) =>
        c.source === 'lua' &&
        c.args[0]!.toLowerCase() === 'spublish' &&
        c.args[2]!.includes(`"i":"${bigId}"`),
    );
    expect(wake?.args[2]!.startsWith('W1\n')).toBe(true);
    expect((await addedJobs(env)).has(bigId)).toBe(false);
  });

  it('loses only time when the worker dies right after a hand-off reached it', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    const doomed = await worker(env, 'after-handoff:stally');
    await announced(env, 1);
    const ingress = await server(env, services, { workers: false });

    const send = async (input: string): Promise<string> => {
      const r = await post(ingress.url, '/stally/work/send', input);
      expect(r.status).toBe(202);
      return (r.body as { invocationId: string }).invocationId;
    };
    const ids = [await send('k0')];
    await until(
      'the worker to die at its first hand-off',
      async () => {
        const { signal } = await Promise.race([
          doomed.exited,
          new Promise<{ signal: undefined }>((r) =>
            setTimeout(() => r({ signal: undefined }), 200),
          ),
        ]);
        return signal === 'SIGKILL';
      },
      RECOVERY_MS,
    );
    expect(doomed.output).toContain('FAULT after-handoff:stally');
    // Accepted while no worker lives: nobody hears a hand-off, so they become mailbox jobs.
    for (let i = 1; i < 5; i++) ids.push(await send(`k${i}`));
    // The accept script leased the first to the doomed worker along with the hand-off.
    expect((await ingress.store.describe(ids[0]!))?.status).toBe('running');

    await worker(env);
    for (const id of ids) await completed(ingress, id);
    for (const [i, id] of ids.entries()) {
      expect((await get(ingress.url, `/restate/invocation/${id}/attach`)).body).toBe(
        `done:k${i}:1`,
      );
      // The doomed worker died before it started anything: every closure ran exactly once.
      expect(await closureRuns(env, id, 'work')).toBe(1);
    }
    // Its lease expired unused: one lost attempt, as for a worker lost after its start script.
    const first = await ingress.store.describe(ids[0]!);
    expect(first?.attempts).toBe(1);
    expect(first?.lastFailure?.code).toBe('WORKER_LOST');
  });
});

// ------------------------------------------------------------------ in-process workers

/** Holds each `gate.hold` invocation until the test opens the gate. */
let openGate: () => void = () => undefined;
let gateOpen = new Promise<void>((r) => (openGate = r));

const gate = service({
  name: 'gate',
  handlers: {
    hold: async (ctx: Context, tag: string) => {
      await ctx.run('wait', () => gateOpen);
      return `held:${tag}`;
    },
  },
});

/** Awaits an awakeable whose id it leaves in `awakeables`; suspends at once while it waits. */
const awakeables = new Map<string, string>();
const waiter = service({
  name: 'waiter',
  handlers: {
    wait: handlers.handler({ inactivityTimeout: 0 }, async (ctx: Context, tag: string) => {
      const awk = ctx.awakeable<string>();
      await ctx.run('publish', () => {
        awakeables.set(tag, awk.id);
      });
      return `woke:${await awk.promise}`;
    }),
  },
});

describe('the hand-off into in-process workers', () => {
  it('becomes a mailbox job when the worker has no free slot', async ({ onTestFinished }) => {
    const env = setup(onTestFinished);
    gateOpen = new Promise<void>((r) => (openGate = r));
    onTestFinished(() => Promise.resolve(openGate()));
    const heard: { invocationId: string; local: boolean }[] = [];
    const store: RedisStoreOptions = { shards: 1 };
    // One slot: concurrency 1 × 1 shard.
    await server(env, [gate], {
      port: false,
      serve: { concurrency: 1 },
      store: { ...store, hooks: { afterHandoff: (i) => heard.push(i) } },
    });
    const ingress = await server(env, [gate], { workers: false, store });

    const send = async (tag: string): Promise<string> => {
      const r = await post(ingress.url, '/gate/hold/send', tag);
      expect(r.status).toBe(202);
      return (r.body as { invocationId: string }).invocationId;
    };
    // Both sent at once: the registry still shows the worker's one slot free, so both are handed
    // to it; one runs in the slot, the other's lease is handed back and becomes a mailbox job.
    const ids = await Promise.all([send('a'), send('b')]);
    const [ran, queued] = await until('both hand-offs to reach the worker', () => {
      const local = heard.find((h) => h.local);
      const full = heard.find((h) => !h.local);
      return local && full ? [local.invocationId, full.invocationId] : undefined;
    });
    expect(new Set([ran, queued])).toEqual(new Set(ids));
    await until('its mailbox job', async () => (await addedJobs(env, 1)).has(queued));

    // Once the worker announced no free slot, a process that reads the registry hands it nothing:
    // the mailbox job at once, no hand-off (and so no lease to hand back).
    await until('the worker to announce no free slot', async () =>
      (
        await env.redis.hget(
          `${env.prefix}:workers`,
          (await env.redis.hkeys(`${env.prefix}:workers`))[0]!,
        )
      )?.endsWith(':0'),
    );
    const late = await server(env, [gate], { workers: false, store });
    const r = await post(late.url, '/gate/hold/send', 'c');
    const third = (r.body as { invocationId: string }).invocationId;
    ids.push(third);
    await until('its mailbox job', async () => (await addedJobs(env, 1)).has(third));
    expect(heard.some((h) => h.invocationId === third)).toBe(false);
    openGate();
    await completed(ingress, ran);
    await completed(ingress, queued);
    await completed(ingress, third);
    for (const [i, id] of ids.entries())
      expect((await get(ingress.url, `/restate/invocation/${id}/attach`)).body).toBe(
        `held:${'abc'[i]}`,
      );
    // The lease handed back never ran: it is not counted as an attempt.
    expect((await ingress.store.describe(queued))?.attempts).toBe(0);
  });

  it('wakes a suspended invocation by a hand-off when an ingress-only process resolves its awakeable', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    await server(env, [waiter], { port: false });
    const ingress = await server(env, [waiter], { workers: false });
    const mon = await startMonitor(redisTarget);
    onTestFinished(() => Promise.resolve(mon.close()));

    const r = await post(ingress.url, '/waiter/wait/send', 'w');
    const id = (r.body as { invocationId: string }).invocationId;
    await until(
      'the waiter to suspend',
      async () => awakeables.has('w') && (await ingress.store.describe(id))?.status === 'suspended',
    );
    const res = await post(
      ingress.url,
      `/restate/awakeables/${awakeables.get('w')!}/resolve`,
      'hi',
    );
    expect(res.status).toBe(202);
    await completed(ingress, id);
    expect((await get(ingress.url, `/restate/invocation/${id}/attach`)).body).toBe('woke:hi');
    // The ingress published the wake-up (not from a script: the delivery's caller did), and no
    // mailbox job was ever added for the invocation.
    await mon.caughtUp();
    const wakes = mon.commands.filter(
      (c) =>
        c.source !== 'lua' &&
        c.args[0]!.toLowerCase() === 'spublish' &&
        c.args[2]!.includes(`"i":"${id}"`),
    );
    expect(wakes.length).toBeGreaterThanOrEqual(1);
    expect((await addedJobs(env)).has(id)).toBe(false);
  });
});
