/**
 * @latchkey/xstate against a real Redis: the handler API and its errors,
 * durable timers that are cancelled or replaced when their state is left,
 * waitFor conditions (met, later met, timed out, unreachable), promise actors
 * nested in child machines and inline, machine versions, the final-state TTL,
 * and fromPromise outside Latchkey.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { assign, createActor, createMachine, setup, waitFor as xstateWaitFor } from 'xstate';
import { TerminalError, type LatchkeyServer } from '@latchkey/core';
import { fromPromise, xstate } from '@latchkey/xstate';
import {
  deletePrefix,
  newPrefix,
  post,
  startServer,
  until,
} from '../../../test/helpers/harness.js';

const redisTarget = inject('redisTarget');

interface Snap {
  status: string;
  value: unknown;
  context: Record<string, unknown>;
  tags: string[];
  output?: unknown;
  error?: { name: string; message: string };
  version: string;
}

const newKey = (): string => `k-${randomUUID().slice(0, 8)}`;

/**
 * Enters `a`, which moves to `b` after 1.5 s on the first entry and 3 s on the
 * second (so a stale first timer would be seen firing early); can leave `a`
 * and come back; counts arrivals in `b`.
 */
const blink = setup({
  types: { context: {} as { entries: number; arrivals: number } },
  delays: { wait: ({ context }) => context.entries * 1500 },
}).createMachine({
  id: 'blink',
  initial: 'a',
  context: { entries: 0, arrivals: 0 },
  states: {
    a: {
      tags: ['waiting'],
      entry: assign({ entries: ({ context }) => context.entries + 1 }),
      after: { wait: 'b' },
      on: { AWAY: 'c' },
    },
    c: { on: { BACK: 'a' } },
    b: {
      entry: assign({ arrivals: ({ context }) => context.arrivals + 1 }),
      on: { FINISH: 'end', BREAK: 'broken' },
    },
    broken: {
      entry: () => {
        throw new Error('boom in an action');
      },
    },
    end: { type: 'final' },
  },
});

/** A parent machine invoking a child machine (with a delayed transition and a promise actor), plus an inline promise actor. */
const child = setup({
  types: { input: {} as { n: number }, context: {} as { n: number } },
  actors: { square: fromPromise(async ({ input }: { input: number }) => input * input) },
}).createMachine({
  id: 'child',
  context: ({ input }) => ({ n: input.n }),
  initial: 'pausing',
  states: {
    pausing: { after: { 200: 'working' } }, // a timer of a child machine
    working: {
      invoke: {
        src: 'square',
        input: ({ context }) => context.n,
        onDone: { target: 'done', actions: assign({ n: ({ event }) => event.output }) },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => context.n,
});
const nested = setup({
  types: { context: {} as { squared: number | null; doubled: number | null } },
  actors: { child },
}).createMachine({
  id: 'nested',
  initial: 'viaChild',
  context: { squared: null, doubled: null },
  states: {
    viaChild: {
      invoke: {
        src: 'child',
        input: { n: 7 },
        onDone: {
          target: 'inline',
          actions: assign({ squared: ({ event }) => event.output as number }),
        },
      },
    },
    inline: {
      invoke: {
        src: fromPromise(async ({ input }: { input: number }) => input * 2),
        input: ({ context }) => context.squared!,
        onDone: {
          target: 'finished',
          actions: assign({ doubled: ({ event }) => event.output as number }),
        },
      },
    },
    finished: { type: 'final' },
  },
});

/** A promise actor that always fails (retryably), with bounded retries. */
let flakyCalls = 0;
const bounded = setup({
  actors: {
    flaky: fromPromise(
      async () => {
        flakyCalls++;
        throw new Error('still down');
      },
      { retry: { maxRetryAttempts: 3, initialRetryInterval: 10 } },
    ),
  },
}).createMachine({
  id: 'bounded',
  initial: 'trying',
  context: { failure: '' },
  states: {
    trying: {
      invoke: {
        src: 'flaky',
        onError: {
          target: 'gaveUp',
          actions: assign({ failure: ({ event }) => (event.error as Error).message }),
        },
      },
    },
    gaveUp: { type: 'final' },
  },
});

/** Two versions of one machine: v1 goes a → x, v2 goes a → y. */
const docV1 = createMachine({
  id: 'doc-v1',
  initial: 'a',
  states: { a: { on: { NEXT: 'x' }, after: { 1000: 'late1' } }, x: {}, late1: {} },
});
const docV2 = createMachine({
  id: 'doc-v2',
  initial: 'a',
  states: { a: { on: { NEXT: 'y' } }, y: {} },
});

/** Reaches its final state on DONE; state is cleared 1 s later. */
const shortLived = createMachine({
  id: 'short',
  initial: 'on',
  states: { on: { on: { DONE: 'off' } }, off: { type: 'final' } },
});

describe('@latchkey/xstate', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, [
      xstate('blink', blink),
      xstate('nested', nested),
      xstate('bounded', bounded),
      xstate('short', shortLived, { finalStateTTL: 1000 }),
    ]);
  });
  afterAll(async () => {
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  const call = async (path: string, body?: unknown): Promise<{ status: number; body: unknown }> =>
    post(server.url, path, body);
  const ok = async (path: string, body?: unknown): Promise<Snap> => {
    const r = await call(path, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as Snap;
  };

  it('create, send and snapshot; bad requests are refused', async () => {
    const key = newKey();
    expect((await call(`/blink/${key}/snapshot`)).body).toBeNull();
    expect((await call(`/blink/${key}/send`, { event: { type: 'AWAY' } })).status).toBe(404);
    const created = await ok(`/blink/${key}/create`);
    expect(created).toMatchObject({
      status: 'active',
      value: 'a',
      context: { entries: 1, arrivals: 0 },
      tags: ['waiting'],
      version: 'blink',
    });
    expect((await call(`/blink/${key}/send`, { type: 'AWAY' })).status).toBe(400); // needs { event }
    expect(
      (await call(`/blink/${key}/send`, { event: { type: 'xstate.after.wait.blink.a' } })).status,
    ).toBe(400); // reserved
    expect((await call(`/blink/${key}/_timer`, { key: 'x', token: 'y' })).status).toBe(404); // internal
    expect((await call(`/blink/${key}/waitFor`, { condition: 'nonsense' })).status).toBe(400);
    const away = await ok(`/blink/${key}/send`, { event: { type: 'AWAY' } });
    expect(away.value).toBe('c');
    expect(await ok(`/blink/${key}/snapshot`)).toEqual(away);
  });

  it('a timer of a state that was left and re-entered is ignored; the new one fires once, not early', async () => {
    const key = newKey();
    await ok(`/blink/${key}/create`);
    await ok(`/blink/${key}/send`, { event: { type: 'AWAY' } }); // cancels the first timer
    const t1 = Date.now();
    await ok(`/blink/${key}/send`, { event: { type: 'BACK' } }); // schedules a new one
    const arrived = await ok(`/blink/${key}/waitFor`, { condition: 'state:b', timeout: 30_000 });
    expect(Date.now() - t1).toBeGreaterThanOrEqual(3000); // the first timer (1.5 s) did not move it
    expect(arrived.context.entries).toBe(2);
    expect(arrived.context.arrivals).toBe(1);
    // Both timer messages were delivered; the stale one changed nothing.
    const timers = await until('both timer messages to be handled', async () => {
      const list = (await server.store.list({ service: 'blink', key })).invocations.filter(
        (i) => i.target.handler === '_timer',
      );
      return list.length === 2 && list.every((i) => i.status === 'completed') ? list : undefined;
    });
    const outcomes = await Promise.all(timers.map((t) => server.store.describe(t.id)));
    expect(
      outcomes
        .map((t) => (t?.outcome as { ok: boolean; value?: string }).value)
        .filter((v) => v === 'null'),
    ).toHaveLength(1);
    expect((await ok(`/blink/${key}/snapshot`)).context.arrivals).toBe(1);
  });

  it('waitFor: met now, met later, timed out (408), unreachable (412)', async () => {
    const key = newKey();
    await ok(`/blink/${key}/create`);
    expect((await ok(`/blink/${key}/waitFor`, { condition: 'hasTag:waiting' })).value).toBe('a');
    // Subscribed before the event that meets it.
    const later = call(`/blink/${key}/waitFor`, { condition: 'state:c', timeout: 30_000 });
    await until('the waitFor subscription', async () =>
      (await server.store.list({ service: 'blink', key })).invocations.some(
        (i) => i.target.handler === '_subscribe' && i.status === 'completed',
      ),
    );
    await ok(`/blink/${key}/send`, { event: { type: 'AWAY' } });
    const met = await later;
    expect(met.status).toBe(200);
    expect((met.body as Snap).value).toBe('c');
    // Never met while active: times out.
    const timedOut = await call(`/blink/${key}/waitFor`, { condition: 'done', timeout: 300 });
    expect(timedOut.status).toBe(408);
    // The actor fails (an action throws) while someone waits for 'done'.
    const pending = call(`/blink/${key}/waitFor`, { condition: 'done', timeout: 30_000 });
    await ok(`/blink/${key}/send`, { event: { type: 'BACK' } });
    await ok(`/blink/${key}/waitFor`, { condition: 'state:b', timeout: 30_000 });
    const broken = await ok(`/blink/${key}/send`, { event: { type: 'BREAK' } });
    expect(broken.status).toBe('error');
    expect(broken.error).toMatchObject({ message: 'boom in an action' });
    expect((await pending).status).toBe(412);
    const again = await ok(`/blink/${key}/send`, { event: { type: 'FINISH' } }); // a failed actor takes no more events
    expect(again).toEqual(broken);
    expect((await call(`/blink/${key}/waitFor`, { condition: 'done' })).status).toBe(412);
  });

  it('runs timers and promise actors of child machines, and inline promise actors', async () => {
    const key = newKey();
    await ok(`/nested/${key}/create`);
    const done = await ok(`/nested/${key}/waitFor`, { condition: 'done', timeout: 30_000 });
    expect(done.value).toBe('finished');
    expect(done.context).toEqual({ squared: 49, doubled: 98 });
    const steps = (await server.store.list({ service: 'nested', key })).invocations.filter(
      (i) => i.target.handler === '_promise',
    );
    expect(steps).toHaveLength(2);
    for (const s of steps) {
      const journal = (await server.store.describe(s.id, true))!.journal!;
      expect(journal.filter((e) => e.k === 'run')).toHaveLength(1);
    }
  });

  it('gives up on a failing promise after its retry bounds, as the error event', async () => {
    const key = newKey();
    flakyCalls = 0;
    await ok(`/bounded/${key}/create`);
    const done = await ok(`/bounded/${key}/waitFor`, { condition: 'done', timeout: 30_000 });
    expect(done.value).toBe('gaveUp');
    expect(done.context.failure).toMatch(/retries exhausted after 3 attempts: still down/);
    expect(flakyCalls).toBe(3);
  });

  it('keeps existing instances on the machine version they started with', async () => {
    const own = newPrefix(); // servers of successive deployments, on their own keys
    const deployments: LatchkeyServer[] = [];
    const deploy = async (def: ReturnType<typeof xstate>): Promise<LatchkeyServer> => {
      await deployments.at(-1)?.close();
      deployments.push(await startServer(redisTarget, own, [def]));
      return deployments.at(-1)!;
    };
    const send = async (
      s: LatchkeyServer,
      key: string,
      type: string,
    ): Promise<{ status: number; body: Snap }> =>
      (await post(s.url, `/doc/${key}/send`, { event: { type } })) as {
        status: number;
        body: Snap;
      };
    try {
      const v1 = await deploy(xstate('doc', docV1));
      const [old, idle] = [newKey(), newKey()];
      expect(((await post(v1.url, `/doc/${old}/create`)).body as Snap).version).toBe('doc-v1');
      await post(v1.url, `/doc/${idle}/create`); // left in `a`: its v1 timer moves it to `late1`
      // Deploy v2, with v1 still listed.
      const v2 = await deploy(xstate('doc', docV2, { versions: [docV1] }));
      const fresh = newKey();
      expect(((await post(v2.url, `/doc/${fresh}/create`)).body as Snap).version).toBe('doc-v2');
      expect((await send(v2, fresh, 'NEXT')).body.value).toBe('y');
      expect((await send(v2, old, 'NEXT')).body).toMatchObject({ value: 'x', version: 'doc-v1' });
      const late = await post(v2.url, `/doc/${idle}/waitFor`, {
        condition: 'state:late1',
        timeout: 30_000,
      });
      expect(late.body).toMatchObject({ value: 'late1', version: 'doc-v1' }); // v2 has no such state
      // Deploy v2 alone: v1 instances fail clearly instead of running on the wrong machine.
      const v3 = await deploy(xstate('doc', docV2));
      const refused = await send(v3, old, 'NEXT');
      expect(refused.status).toBe(500);
      expect(JSON.stringify(refused.body)).toMatch(/doc-v1.*not deployed/);
    } finally {
      await deployments.at(-1)?.close();
      await deletePrefix(redisTarget, own);
    }
    expect(() => xstate('doc', docV1, { versions: [docV1] })).toThrow(/two machine versions/);
  });

  it('clears a finished instance after finalStateTTL, not before', async () => {
    const key = newKey();
    await ok(`/short/${key}/create`);
    const t0 = Date.now();
    expect((await ok(`/short/${key}/send`, { event: { type: 'DONE' } })).status).toBe('done');
    const reads: Array<{ endedAt: number; gone: boolean }> = [];
    await until('the state to be cleared', async () => {
      const state = await server.store.getState('short', key);
      reads.push({ endedAt: Date.now(), gone: state.size === 0 });
      return state.size === 0;
    });
    expect(reads.filter((r) => r.endedAt < t0 + 1000).every((r) => !r.gone)).toBe(true);
    expect((await call(`/short/${key}/snapshot`)).body).toBeNull();
    expect((await call(`/short/${key}/send`, { event: { type: 'DONE' } })).status).toBe(404);
  });

  it('fromPromise behaves like XState’s own outside Latchkey', async () => {
    const m = setup({
      actors: {
        ok: fromPromise(async ({ input }: { input: number }) => input + 1),
        bad: fromPromise(async () => {
          throw new TerminalError('nope');
        }),
      },
    }).createMachine({
      initial: 'one',
      context: { v: 0, err: '' },
      states: {
        one: {
          invoke: {
            src: 'ok',
            input: 41,
            onDone: { target: 'two', actions: assign({ v: ({ event }) => event.output }) },
          },
        },
        two: {
          invoke: {
            src: 'bad',
            onError: {
              target: 'end',
              actions: assign({ err: ({ event }) => (event.error as Error).message }),
            },
          },
        },
        end: { type: 'final' },
      },
    });
    const actor = createActor(m).start();
    const s = await xstateWaitFor(actor, (x) => x.status === 'done', { timeout: 5000 });
    expect(s.context).toEqual({ v: 42, err: 'nope' });
  });
});
