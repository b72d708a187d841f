/**
 * Cancellation and kill (Restate's semantics), through the admin API:
 *
 * - cancel of an invocation blocked on a call, a sleep or an awakeable surfaces a
 *   CancelledError at that await; the handler's compensation (a ctx.run and a state
 *   write in its catch) runs and commits before the object key serves the next queued
 *   call; the caller and attachers get 409; a pending child call is cancelled too and
 *   runs its own compensation;
 * - kill ends the invocation (and its pending child calls) at once: no compensation,
 *   callers get 409, the key serves the next queued call;
 * - a handler that called the cancelled/killed invocation gets a 409 TerminalError;
 * - an A→B→A exclusive deadlock is visible in GET /invocations and cancelling the
 *   first invocation resolves it.
 *
 * Services run in this process (serve() with the admin API); handlers append to a
 * per-test event log in Redis from journaled steps.
 */
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  CancelledError,
  handlers,
  isTerminalError,
  object,
  service,
  type Context,
  type ObjectContext,
} from '@latchkey/core';
import { get, post, until } from './helpers/harness.js';
import {
  EventLog,
  admin,
  attach,
  describeInv,
  listInv,
  setupControl,
  untilCompleted,
  untilStatus,
  within,
  type AdminInvocation,
} from './helpers/control.js';

const redisTarget = inject('redisTarget');
const log = new EventLog(redisTarget);
afterAll(() => log.close());

/** The status of an invocation parked on an await: always suspend mode vs. in memory. */
const BLOCKED = process.env['LATCHKEY_INACTIVITY_TIMEOUT'] === '0' ? 'suspended' : 'running';

/**
 * After a kill, how long nothing more may happen (no compensation may run). Longer
 * than the lease renewal period (FAST_TIMINGS: lease 2 s, renewed every ~670 ms), by
 * which a fenced in-memory attempt has learnt that it lost its lease.
 */
const QUIET_MS = 1500;

// ------------------------------------------------------------------ services

/** A child that waits on an awakeable nobody resolves, compensating when cancelled. */
const cchild = service({
  name: 'cchild',
  handlers: {
    wait: async (ctx: Context) => {
      const id = ctx.request().id;
      const a = ctx.awakeable<string>();
      await ctx.run('waiting', () => log.add(`child-waiting:${id}`));
      try {
        return await a.promise;
      } catch (e) {
        await ctx.run('compensate', () => log.add(`child-comp:${id}:${(e as Error).name}`));
        throw e;
      }
    },
  },
});

type Kind = 'call' | 'sleep' | 'awakeable';

/** Runs `block` between a 'started' step and a compensation (step + state write) in its catch. */
async function guarded(
  ctx: ObjectContext,
  kind: Kind,
  block: () => PromiseLike<unknown>,
): Promise<unknown> {
  const id = ctx.request().id;
  await ctx.run('started', () => log.add(`started:${kind}:${id}`));
  try {
    return await block();
  } catch (e) {
    await ctx.run('compensate', () => log.add(`comp:${kind}:${id}:${(e as Error).name}`));
    ctx.set('compensated', kind);
    throw e;
  }
}

/** An object whose exclusive handlers block on a call, a sleep or an awakeable. */
const holder = object({
  name: 'holder',
  handlers: {
    call: async (ctx: ObjectContext) =>
      guarded(ctx, 'call', () => ctx.serviceClient(cchild).wait()),
    sleep: async (ctx: ObjectContext) => guarded(ctx, 'sleep', () => ctx.sleep(120_000)),
    awakeable: async (ctx: ObjectContext) =>
      guarded(ctx, 'awakeable', async () => {
        const a = ctx.awakeable<string>();
        await ctx.run('published', () => log.add(`awk:${ctx.request().id}:${a.id}`));
        return await a.promise;
      }),
    /** The next exclusive call on the key: reports what the previous one left in state. */
    next: async (ctx: ObjectContext) => {
      await ctx.run('next', () => log.add(`next:${ctx.request().id}`));
      return { compensated: await ctx.get<string>('compensated') };
    },
  },
});

/** A handler that calls a holder handler and reports the failure it gets. */
const outer = service({
  name: 'outer',
  handlers: {
    callHolder: async (ctx: Context, input: { key: string; handler: Kind }) => {
      try {
        const v = await ctx.genericCall({
          service: 'holder',
          method: input.handler,
          key: input.key,
          parameter: undefined,
        });
        return { ok: true, value: v };
      } catch (e) {
        if (!isTerminalError(e)) throw e;
        return {
          ok: false,
          name: e.name,
          status: e.errorCode,
          message: e.message,
          cancelled: e instanceof CancelledError,
        };
      }
    },
  },
});

/** A→B→A: dla.start calls dlb.relay, which calls dla.back on the same key (queued behind start). */
const dlb = object({
  name: 'dlb',
  handlers: {
    relay: async (ctx: ObjectContext) =>
      `relay(${await ctx.genericCall<string>({ service: 'dla', method: 'back', key: ctx.key, parameter: undefined })})`,
  },
});
const dla = object({
  name: 'dla',
  handlers: {
    start: async (ctx: ObjectContext) => {
      const id = ctx.request().id;
      try {
        return await ctx.objectClient(dlb, ctx.key).relay();
      } catch (e) {
        await ctx.run('compensate', () => log.add(`dla-comp:${id}:${(e as Error).name}`));
        throw e;
      }
    },
    back: handlers.object.exclusive(async (ctx: ObjectContext) => {
      await ctx.run('back', () => log.add(`back:${ctx.request().id}`));
      return 'back';
    }),
  },
});

const services = [cchild, holder, outer, dla, dlb];

// ------------------------------------------------------------------ helpers

interface Blocked {
  id: string;
  /** The child invocation (kind 'call'). */
  childId?: string;
  /** The journal kind the handler blocks on. */
  entry: string;
}

const ENTRY_OF: Record<Kind, string> = { call: 'call', sleep: 'sleep', awakeable: 'awk' };

/** Waits until the invocation that logged `started:<kind>:` is parked on its blocking await. */
async function waitBlocked(adminUrl: string, kind: Kind): Promise<Blocked> {
  const started = await log.waitFor(new RegExp(`^started:${kind}:`));
  const id = started.split(':')[2]!;
  const entry = ENTRY_OF[kind];
  const d = await until(`${id} to journal its ${entry} entry and be ${BLOCKED}`, async () => {
    const info = await describeInv(adminUrl, id);
    return info && info.status === BLOCKED && info.journal?.some((e) => e.k === entry)
      ? info
      : undefined;
  });
  const out: Blocked = { id, entry };
  if (kind === 'call') {
    const call = d.journal!.find((e) => e.k === 'call') as { id: string };
    out.childId = call.id;
    await log.waitFor(`child-waiting:${call.id}`);
    await untilStatus(adminUrl, call.id, [BLOCKED]);
  }
  if (kind === 'awakeable') await log.waitFor(new RegExp(`^awk:${id}:`));
  return out;
}

/** Sends holder.next on the key and checks it is queued behind the blocked invocation. */
async function queueNext(base: string, adminUrl: string, key: string): Promise<string> {
  const r = await post(base, `/holder/${key}/next/send`);
  expect(r.status).toBe(202);
  const nextId = (r.body as { invocationId: string }).invocationId;
  const queued = await listInv(adminUrl, { service: 'holder', key, status: 'queued' });
  expect(queued.map((i) => i.id)).toEqual([nextId]);
  return nextId;
}

function errorOf(d: AdminInvocation): {
  name: string;
  code: string;
  status?: number;
  message: string;
} {
  expect(d.outcome?.ok).toBe(false);
  return (
    d.outcome as {
      ok: false;
      error: { name: string; code: string; status?: number; message: string };
    }
  ).error;
}

/** [label, kind] pairs for it.each. */
const KINDS: [string, Kind][] = [
  ['a call', 'call'],
  ['a sleep', 'sleep'],
  ['an awakeable', 'awakeable'],
];

// ------------------------------------------------------------------ tests

describe('cancel of a blocked exclusive handler', () => {
  it.each(KINDS)(
    'blocked on %s: compensation runs, callers get 409, the key serves the next call',
    async (_label, kind) => {
      const { server } = await setupControl(redisTarget, services, log, onTestFinished);
      const key = `c-${kind}`;
      const call = post(server.url, `/holder/${key}/${kind}`);
      const b = await waitBlocked(server.adminUrl, kind);
      const nextId = await queueNext(server.url, server.adminUrl, key);

      const c = await admin(server.adminUrl, 'PATCH', `/invocations/${b.id}/cancel`);
      expect(c.status).toBe(200);
      expect(c.body).toEqual({ invocationId: b.id, cancel: true });

      // The ingress caller and an attacher get 409.
      const r = await within("the caller's answer", call);
      expect(r.status).toBe(409);
      expect(r.headers.get('x-restate-id')).toBe(b.id);
      expect((r.body as { message: string }).message).toMatch(/cancel/i);
      const att = await attach(server.url, b.id);
      expect(att.status).toBe(409);

      // Its outcome is a cancellation; the journal has the signal and the compensation.
      const d = await untilCompleted(server.adminUrl, b.id);
      expect(errorOf(d)).toMatchObject({ name: 'CancelledError', status: 409 });
      const journal = d.journal ?? [];
      const sig = journal.findIndex((e) => e.k === 'signal');
      const comp = journal.findIndex((e) => e.k === 'run' && e.n === 'compensate');
      expect(sig).toBeGreaterThan(journal.findIndex((e) => e.k === b.entry));
      expect(comp).toBeGreaterThan(sig);
      expect(journal.some((e) => e.k === 'set' && e.n === 'compensated')).toBe(true);

      // The compensation ran once, before the next call on the key, which sees its state write.
      const next = await attach(server.url, nextId);
      expect(next.status).toBe(200);
      expect(next.body).toEqual({ compensated: kind });
      const events = await log.all();
      const compEvent = `comp:${kind}:${b.id}:CancelledError`;
      expect(events.filter((e) => e === compEvent)).toHaveLength(1);
      expect(events.indexOf(compEvent)).toBeLessThan(events.indexOf(`next:${nextId}`));

      if (kind === 'call') {
        // The pending child call was cancelled too: its own compensation ran, its outcome is a cancellation.
        const child = await untilCompleted(server.adminUrl, b.childId!);
        expect(errorOf(child)).toMatchObject({ name: 'CancelledError', status: 409 });
        expect(await log.all()).toContain(`child-comp:${b.childId}:CancelledError`);
        expect((await get(server.url, `/restate/invocation/${b.childId}/output`)).status).toBe(409);
      }
    },
  );

  it('a handler that called the cancelled invocation gets a 409 CancelledError', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const call = post(server.url, '/outer/callHolder', { key: 'oc', handler: 'awakeable' });
    const b = await waitBlocked(server.adminUrl, 'awakeable');
    expect((await admin(server.adminUrl, 'PATCH', `/invocations/${b.id}/cancel`)).status).toBe(200);
    const r = await within("the caller's answer", call);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: false,
      name: 'CancelledError',
      status: 409,
      cancelled: true,
    });
    expect(await log.all()).toContain(`comp:awakeable:${b.id}:CancelledError`);
  });

  it('cancel of a completed invocation answers 409 and changes nothing; unknown ids 404', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const r = await post(server.url, '/holder/done/next');
    expect(r.status).toBe(200);
    const id = r.headers.get('x-restate-id')!;
    const c = await admin(server.adminUrl, 'PATCH', `/invocations/${id}/cancel`);
    expect(c.status).toBe(409);
    const d = await describeInv(server.adminUrl, id);
    expect(d?.outcome).toEqual({ ok: true, value: JSON.stringify({ compensated: null }) });
    expect(
      (await admin(server.adminUrl, 'PATCH', `/invocations/inv_00AAAAAAAAAAAAAAAAAAAA/cancel`))
        .status,
    ).toBe(404);
  });
});

describe('kill of a blocked exclusive handler', () => {
  it.each(KINDS)(
    'blocked on %s: no compensation, the caller gets 409, the key serves the next call',
    async (_label, kind) => {
      const { server } = await setupControl(redisTarget, services, log, onTestFinished);
      const key = `k-${kind}`;
      const call = post(server.url, `/holder/${key}/${kind}`);
      const b = await waitBlocked(server.adminUrl, kind);
      const nextId = await queueNext(server.url, server.adminUrl, key);

      const k = await admin(server.adminUrl, 'PATCH', `/invocations/${b.id}/kill`);
      expect(k.status).toBe(200);
      expect(k.body).toEqual({ invocationId: b.id, kill: true });

      const r = await within("the caller's answer", call);
      expect(r.status).toBe(409);
      expect(r.headers.get('x-restate-id')).toBe(b.id);
      expect((r.body as { message: string }).message).toMatch(/kill/i);
      expect((await attach(server.url, b.id)).status).toBe(409);
      const d = await untilCompleted(server.adminUrl, b.id);
      expect(errorOf(d)).toMatchObject({ code: 'KILLED', status: 409 });

      // The key is free: the next queued call runs (and sees no compensation's state).
      const next = await attach(server.url, nextId);
      expect(next.status).toBe(200);
      expect(next.body).toEqual({ compensated: null });

      if (kind === 'call') {
        // The pending child is killed with its parent.
        const child = await untilCompleted(server.adminUrl, b.childId!);
        expect(errorOf(child)).toMatchObject({ code: 'KILLED', status: 409 });
      }

      // No compensation ran, then or later (a killed attempt runs no more user code).
      await new Promise((res) => setTimeout(res, QUIET_MS));
      const events = await log.all();
      expect(events.filter((e) => e.startsWith('comp:') || e.startsWith('child-comp:'))).toEqual(
        [],
      );
      const after = await describeInv(server.adminUrl, b.id);
      expect(after?.journal?.some((e) => e.k === 'run' && e.n === 'compensate')).toBe(false);
      expect(
        (
          await admin<{ state: Record<string, unknown> }>(
            server.adminUrl,
            'GET',
            `/services/holder/state/${key}`,
          )
        ).body.state,
      ).toEqual({});
    },
  );

  it('a handler that called the killed invocation gets a 409 TerminalError', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const call = post(server.url, '/outer/callHolder', { key: 'ok', handler: 'sleep' });
    const b = await waitBlocked(server.adminUrl, 'sleep');
    expect((await admin(server.adminUrl, 'PATCH', `/invocations/${b.id}/kill`)).status).toBe(200);
    const r = await within("the caller's answer", call);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      ok: false,
      name: 'TerminalError',
      status: 409,
      cancelled: false,
    });
    expect((r.body as { message: string }).message).toMatch(/kill/i);
  });
});

describe('an A→B→A exclusive deadlock', () => {
  it('is visible in GET /invocations and resolved by cancelling the first invocation', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const call = post(server.url, '/dla/x/start');

    // start (dla/x) waits on relay (dlb/x), which waits on back (dla/x), queued behind start.
    const [back] = await until('dla.back to be queued', async () => {
      const q = await listInv(server.adminUrl, { service: 'dla', key: 'x', status: 'queued' });
      return q.length === 1 ? q : undefined;
    });
    expect(back!.target).toEqual({ service: 'dla', handler: 'back', key: 'x' });
    const [start] = await until(`dla.start to be ${BLOCKED}`, async () => {
      const l = await listInv(server.adminUrl, { service: 'dla', status: BLOCKED });
      return l.length === 1 ? l : undefined;
    });
    expect(start!.target).toEqual({ service: 'dla', handler: 'start', key: 'x' });
    const [relay] = await until(`dlb.relay to be ${BLOCKED}`, async () => {
      const l = await listInv(server.adminUrl, { service: 'dlb', status: BLOCKED });
      return l.length === 1 ? l : undefined;
    });
    expect(relay!.target).toEqual({ service: 'dlb', handler: 'relay', key: 'x' });
    // The wait-for chain, from the journals: start → relay → back.
    const startInfo = (await describeInv(server.adminUrl, start!.id))!;
    const relayInfo = (await describeInv(server.adminUrl, relay!.id))!;
    expect(startInfo.journal).toContainEqual({ k: 'call', n: 'dlb/relay', id: relay!.id });
    expect(relayInfo.journal).toContainEqual({ k: 'call', n: 'dla/back', id: back!.id });
    // Every invocation of the key dla/x, in acceptance order.
    expect(
      (await listInv(server.adminUrl, { service: 'dla', key: 'x' })).map((i) => [i.id, i.status]),
    ).toEqual([
      [start!.id, BLOCKED],
      [back!.id, 'queued'],
    ]);

    expect((await admin(server.adminUrl, 'PATCH', `/invocations/${start!.id}/cancel`)).status).toBe(
      200,
    );
    const r = await within("the caller's answer", call);
    expect(r.status).toBe(409);
    expect(r.headers.get('x-restate-id')).toBe(start!.id);

    const s = await untilCompleted(server.adminUrl, start!.id);
    expect(errorOf(s)).toMatchObject({ name: 'CancelledError', status: 409 });
    expect(await log.all()).toContain(`dla-comp:${start!.id}:CancelledError`);
    // The cancellation propagates down the chain; each completes, as cancelled or (having
    // raced the cancellation) with its result.
    const rl = await untilCompleted(server.adminUrl, relay!.id);
    const bk = await untilCompleted(server.adminUrl, back!.id);
    if (rl.outcome?.ok) expect(rl.outcome.value).toBe(JSON.stringify('relay(back)'));
    else expect(errorOf(rl)).toMatchObject({ name: 'CancelledError', status: 409 });
    if (bk.outcome?.ok) expect(bk.outcome.value).toBe(JSON.stringify('back'));
    else expect(errorOf(bk)).toMatchObject({ name: 'CancelledError', status: 409 });
    // Nothing is left waiting on either key.
    expect(await listInv(server.adminUrl, { service: 'dla', status: 'queued' })).toEqual([]);
    const busy = [
      ...(await listInv(server.adminUrl, { service: 'dla' })),
      ...(await listInv(server.adminUrl, { service: 'dlb' })),
    ].filter((i) => i.status !== 'completed');
    expect(busy).toEqual([]);
    // Both keys serve calls again.
    expect((await post(server.url, '/dla/x/back')).body).toBe('back');
  });
});
