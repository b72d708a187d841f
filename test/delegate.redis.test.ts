/**
 * Delegated accepts (ARCHITECTURE.md "Delegated accepts", `delegate.ts`): an ingress-only process
 * asks a worker of another process to accept a call, so that the worker runs the handler eagerly
 * and one script accepts and completes it. Observed on the real Redis:
 * - each call costs the ingress one message (`A…` on the worker's hand-off channel of the call's
 *   partition) and the worker one accept script, which publishes the outcome to the ingress's
 *   outcome channel; no completion script, no mailbox job;
 * - a handler that stops short (a step) is accepted the ordinary way on the worker, which runs it,
 *   and after three such calls the ingress no longer delegates it;
 * - a worker SIGKILLed with the message, or between the eager run and its accept script, has
 *   accepted nothing: the ingress accepts the call itself once its wait ends, and it runs once;
 * - a worker whose eager accept comes after the ingress accepted the call itself finds the
 *   invocation there (`exists`): its eager result is dropped and the call runs once, the ordinary way;
 * - a worker with no free slot accepts a delegated call without trying it and says `=` (no sign
 *   that the handler stops short); the call still runs, as a mailbox job.
 */
import { describe, expect, inject, it } from 'vitest';
import { service, type Context, type LatchkeyServer } from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { echo, services } from './fixtures/eager-services.mjs';
import { startMonitor, type Monitor, type MonitoredCommand } from './helpers/monitor.js';
import { post, until } from './helpers/harness.js';
import {
  RECOVERY_MS,
  addedJobs,
  announced,
  server,
  setup,
  worker,
  type HandoffEnv,
} from './helpers/handoff.js';

const redisTarget = inject('redisTarget');
const ENV = { LK_SERVICES: 'eager-services.mjs' };
/** Workers run eagerly (the crash fixture turns eager completion off unless asked). */
const EAGER = { eagerCompletion: true };

async function monitor(onTestFinished: (fn: () => Promise<void>) => void): Promise<Monitor> {
  const mon = await startMonitor(redisTarget);
  onTestFinished(() => Promise.resolve(mon.close()));
  return mon;
}

/** The delegation messages the ingress published, by invocation id (channel and message). */
function delegations(mon: Monitor): Map<string, { channel: string; msg: string }> {
  const out = new Map<string, { channel: string; msg: string }>();
  for (const c of mon.commands) {
    if (c.source === 'lua' || c.args[0]!.toLowerCase() !== 'spublish') continue;
    const msg = c.args[2]!;
    if (!c.args[1]!.includes('}:hand:') || msg[0] !== 'A') continue;
    const id = (JSON.parse(msg.slice(1, msg.indexOf('\n'))) as { id: string }).id;
    expect(out.has(id)).toBe(false);
    out.set(id, { channel: c.args[1]!, msg });
  }
  return out;
}

/** A script call (EVAL the first time a script runs on a server, else EVALSHA). */
function isScript(c: MonitoredCommand): boolean {
  return c.source !== 'lua' && /^eval(sha)?$/i.test(c.args[0]!);
}

/**
 * The script calls that name an invocation (accept, completion...); with `handler`, only its
 * accepts (the id and the handler's name are both arguments of an accept).
 */
function scriptCalls(mon: Monitor, id: string, handler?: string): MonitoredCommand[] {
  return mon.commands.filter(
    (c) =>
      isScript(c) && c.args.includes(id) && (handler === undefined || c.args.includes(handler)),
  );
}

/** The messages the scripts published (an outcome, a delegated accept's note...), in order. */
function scriptPublished(mon: Monitor): { channel: string; msg: string }[] {
  return mon.commands
    .filter((c) => c.source === 'lua' && c.args[0]!.toLowerCase() === 'spublish')
    .map((c) => ({ channel: c.args[1]!, msg: c.args[2]! }));
}

/** The invocation completed, and no attempt of it failed or was lost on the way. */
async function completedCleanly(s: LatchkeyServer, id: string): Promise<void> {
  const inv = await s.store.describe(id);
  expect(inv?.status).toBe('completed');
  expect(inv?.attempts).toBe(0);
  expect(inv?.lastFailure).toBeUndefined();
}

async function eagerWorkers(env: HandoffEnv, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await worker(env, { env: ENV, store: EAGER });
  await announced(env, n);
}

describe('delegated accepts from an ingress-only process', () => {
  it('has a worker accept and complete each call in one script', async ({ onTestFinished }) => {
    const env = setup(onTestFinished);
    await eagerWorkers(env, 2);
    const ingress = await server(env, services, { workers: false });
    const mon = await monitor(onTestFinished);

    const N = 20;
    const calls = await Promise.all(
      Array.from({ length: N }, (_, i) => post(ingress.url, '/echo/shout', `h${i}`)),
    );
    const ids = calls.map((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(`h${i}!`);
      return r.headers.get('x-restate-id')!;
    });
    await mon.caughtUp();
    const sent = delegations(mon);
    const keys = new Keys(env.prefix);
    const workersUsed = new Set<string>();
    for (const [i, id] of ids.entries()) {
      const p = parseInt(id.slice(4, 6), 36);
      // One message to a worker, on its channel of the call's partition...
      const d = sent.get(id);
      expect(d?.channel.startsWith(`${keys.part(p)}hand:`)).toBe(true);
      workersUsed.add(d!.channel.slice(d!.channel.lastIndexOf(':') + 1));
      // ...and one script in all: the worker's accept, which completed it...
      expect(scriptCalls(mon, id)).toHaveLength(1);
      // ...and told the ingress the outcome on the ingress's outcome channel.
      const told = scriptPublished(mon).filter(
        (m) => m.channel.startsWith(`${keys.part(p)}done:`) && m.msg === `${id}\nok\n"h${i}!"`,
      );
      expect(told).toHaveLength(1);
      const inv = await ingress.store.describe(id);
      expect(inv?.status).toBe('completed');
    }
    expect(workersUsed.size).toBe(2);
    const jobs = await addedJobs(env);
    for (const id of ids) expect(jobs.has(id)).toBe(false);
  });

  it('accepts a handler that stops short on the worker, and stops delegating it after three', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    await eagerWorkers(env, 1);
    const ingress = await server(env, services, { workers: false });
    const mon = await monitor(onTestFinished);

    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await post(ingress.url, '/echo/stepped', `s${i}`);
      expect(r.body).toBe(`s${i}.`);
      ids.push(r.headers.get('x-restate-id')!);
    }
    await mon.caughtUp();
    const sent = delegations(mon);
    // The first three were delegated: each accepted on the worker (which told the ingress
    // '<id>\n+') and run there; the ingress then accepted the others itself.
    expect(ids.map((id) => sent.has(id))).toEqual([true, true, true, false, false, false]);
    for (const id of ids.slice(0, 3)) {
      const plus = scriptPublished(mon).filter((m) => m.msg === `${id}\n+`);
      expect(plus).toHaveLength(1);
    }
    for (const id of ids) {
      expect(scriptCalls(mon, id, 'stepped')).toHaveLength(1);
      await completedCleanly(ingress, id);
    }
  });

  for (const fault of ['after-handoff:echo', 'before-eager-accept:shout']) {
    it(`loses only time when the worker dies with the call (${fault})`, async ({
      onTestFinished,
    }) => {
      const env = setup(onTestFinished);
      const doomed = await worker(env, { env: ENV, store: EAGER, fault });
      await announced(env, 1);
      const ingress = await server(env, services, {
        workers: false,
        store: { delegateTimeoutMs: 300 },
      });
      const mon = await monitor(onTestFinished);

      const call = post(ingress.url, '/echo/shout', 'x');
      expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(doomed.output).toContain(`FAULT ${fault}`);
      // The ingress accepted the call itself once its wait ended; a live worker runs it.
      await worker(env, { env: ENV, store: EAGER });
      const r = await call;
      expect(r.status).toBe(200);
      expect(r.body).toBe('x!');
      const id = r.headers.get('x-restate-id')!;
      await mon.caughtUp();
      // Delegated first, then accepted once, by the ingress: the dead worker accepted nothing.
      expect(delegations(mon).has(id)).toBe(true);
      expect(scriptCalls(mon, id, 'shout')).toHaveLength(1);
      await completedCleanly(ingress, id);
    });
  }

  it('drops a worker’s eager result when its accept comes after the ingress accepted the call', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    const slow = await worker(env, {
      env: ENV,
      store: EAGER,
      fault: 'stall-before-eager-accept:shout:1500',
    });
    await announced(env, 1);
    const ingress = await server(env, services, {
      workers: false,
      store: { delegateTimeoutMs: 300 },
    });
    const mon = await monitor(onTestFinished);

    const r = await post(ingress.url, '/echo/shout', 'late');
    expect(r.status).toBe(200);
    expect(r.body).toBe('late!');
    expect(slow.output).toContain('FAULT stall-before-eager-accept:shout:1500');
    const id = r.headers.get('x-restate-id')!;
    await until(
      'the worker’s late accept',
      async () => {
        await mon.caughtUp();
        return scriptCalls(mon, id, 'shout').length === 2;
      },
      RECOVERY_MS,
    );
    // The ingress's accept came first and handed the call to the worker; the worker's eager
    // accept then found it (no 'done'), and the call ran once, as an ordinary attempt.
    const [first] = scriptCalls(mon, id, 'shout');
    expect(first!.args.some((a) => a.startsWith('{"i":"' + id))).toBe(true);
    const told = scriptPublished(mon).filter((m) => m.msg.startsWith(`${id}\n`));
    expect(told.map((m) => m.msg)).toEqual([`${id}\nok\n"late!"`]);
    await completedCleanly(ingress, id);
  });

  it('is accepted without an eager run by a worker with no free slot, which says so', async ({
    onTestFinished,
  }) => {
    const env = setup(onTestFinished);
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    onTestFinished(() => Promise.resolve(open()));
    const gate = service({
      name: 'gate',
      handlers: { hold: async (ctx: Context) => ctx.run('wait', () => opened) },
    });
    // One slot (concurrency 1 × 1 shard), held by a gate invocation.
    const w = await server(env, [gate, echo], {
      serve: { concurrency: 1 },
      store: { shards: 1 },
    });
    const held = ((await post(w.url, '/gate/hold/send', 'a')).body as { invocationId: string })
      .invocationId;
    await until(
      'the gate to hold the slot',
      async () => (await w.store.describe(held))?.status === 'running',
    );
    const mon = await monitor(onTestFinished);
    // The test plays the delegating process: a call of partition 3, its note to a channel of ours.
    const keys = new Keys(env.prefix);
    const id = `inv_03${'D'.repeat(22)}`;
    const channel = `${keys.part(3)}done:test`;
    const day = 86_400_000;
    const call = {
      id,
      service: 'echo',
      handler: 'shout',
      mode: 'service',
      journalRetentionMs: day,
      idempotencyRetentionMs: day,
      workflowRetentionMs: day,
      rs: 'seed',
      oc: channel,
    };
    const [name] = await env.redis.hkeys(`${env.prefix}:workers`);
    const heard = await env.redis.spublish(
      `${keys.part(3)}hand:${name!}`,
      `A${JSON.stringify(call)}\n"busy"`,
    );
    expect(heard).toBe(1);
    const told = async (msg: string): Promise<boolean> => {
      await mon.caughtUp();
      return scriptPublished(mon).some((m) => m.channel === channel && m.msg === msg);
    };
    await until('the worker’s note', () => told(`${id}\n=`), RECOVERY_MS);
    expect(await told(`${id}\n+`)).toBe(false);
    // Accepted without a slot here, it runs as a mailbox job; its outcome comes to our channel.
    await until('its outcome', () => told(`${id}\nok\n"busy!"`), RECOVERY_MS);
    expect((await w.store.describe(held))?.status).toBe('running');
    expect(await told(`${id}\n+`)).toBe(false);
  });
});
