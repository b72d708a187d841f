/**
 * The public ingress cannot bend a journal (docs/SECURITY.md). Tried as an attacker would, with
 * nothing but the public HTTP and WebSocket ingresses:
 *
 * - forged completions: an awakeable id forged for any index of any invocation (a sleep, a step,
 *   a pending call, a workflow promise, an awakeable with a guessed secret, a private invocation's
 *   real awakeable) is refused with 404; Redis holds exactly the keys and values it held before;
 *   the server still answers; the handler's real outcome is the one delivered;
 * - floods of forged completions and the cap on an invocation's completions;
 * - timers whatever Redis holds: odd stored wake times never make a dispatch loop; huge timers in
 *   handler code fail terminally;
 * - no in-band tokens: strings shaped like the old sleep token survive a forced replay intact;
 * - secrets: `ctx.rand` (the signup example's emailed secret) and child ids cannot be derived
 *   from an invocation id a client learns;
 * - who may do what: cancel only with the token the starter was given; private invocations are
 *   invisible to attach, output, subscribe, cancel and awakeables.
 *
 * Each row snapshots the keyspace (every key under the test prefix, with a digest of its value)
 * once it is at rest, sends the hostile requests, and compares. The store runs with leases and
 * job locks far longer than the file, so waiting invocations leave the keyspace at rest.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  handlers,
  object,
  rpc,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { connect, CallError } from '@latchkey/client';
import { deriveSecret } from '@latchkey/core/internal';
import { scriptSources } from '@latchkey/redis-store';
import { userSignup } from '../examples/signup/src/signup.js';
import { childIdDigestFromParent, forgedAwakeableIds, uuidSeededById } from './helpers/attacker.js';
import { FrameSocket } from './helpers/frames.js';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { restingKeyspace, snapshotKeyspace, type Keyspace } from './helpers/keyspace.js';
import { startMonitor } from './helpers/monitor.js';
import { keysOnMasters, rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');

// ------------------------------------------------------------------ in-process gates and mailboxes

const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gateOf(name: string): { promise: Promise<void>; open: () => void } {
  let g = gates.get(name);
  if (!g) {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    g = { promise, open };
    gates.set(name, g);
  }
  return g;
}
/** Awakeable ids and emails handlers publish (the workers run in this process). */
const published = new Map<string, string>();

// ------------------------------------------------------------------ services under attack

const sleeper = service({
  name: 'sd_sleep',
  handlers: {
    nap: async (ctx: Context, ms: number) => {
      await ctx.sleep(ms);
      return 'rested';
    },
    /** Timers beyond the engine's maximum fail terminally, before anything is journaled. */
    forever: async (ctx: Context) => {
      await ctx.sleep(1e300);
      return 'woke';
    },
    laterForever: async (ctx: Context) => {
      ctx.serviceSendClient(sleeper).nap(1, rpc.sendOpts({ delay: 1e300 }));
      return 'sent';
    },
  },
});

const stepper = object({
  name: 'sd_step',
  handlers: {
    step: async (ctx: ObjectContext) =>
      ctx.run('slow', async () => {
        await gateOf(`step:${ctx.key}`).promise;
        return 'real';
      }),
  },
});

const child = object({
  name: 'sd_child',
  handlers: {
    work: async (ctx: ObjectContext) =>
      ctx.run('work', async () => {
        await gateOf(`child:${ctx.key}`).promise;
        return `child ${ctx.key} done`;
      }),
  },
});

const parent = object({
  name: 'sd_parent',
  handlers: {
    ask: async (ctx: ObjectContext) => ctx.objectClient(child, ctx.key).work(),
  },
});

const approval = workflow({
  name: 'sd_approval',
  handlers: {
    run: async (ctx: WorkflowContext) => `approved by ${await ctx.promise<string>('ok').get()}`,
    approve: async (ctx: WorkflowSharedContext, by: string) => {
      await ctx.promise<string>('ok').resolve(by);
      return 'done';
    },
  },
});

const waiter = object({
  name: 'sd_wait',
  handlers: {
    wait: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      await ctx.run('publish', () => {
        published.set(`wait:${ctx.key}`, a.id);
      });
      return `got ${await a.promise}`;
    },
    /** Three awakeables, resolved in turn (the completions cap). */
    three: async (ctx: ObjectContext) => {
      const got: string[] = [];
      for (let i = 0; i < 3; i++) {
        const a = ctx.awakeable<string>();
        await ctx.run('publish', () => {
          published.set(`three:${ctx.key}:${i}`, a.id);
        });
        got.push(await a.promise);
      }
      return got;
    },
  },
});

const hidden = service({
  name: 'sd_hidden',
  handlers: {
    wait: handlers.handler({ ingressPrivate: true }, async (ctx: Context, tag: string) => {
      const a = ctx.awakeable<string>();
      await ctx.run('publish', () => {
        published.set(`hidden:${tag}`, a.id);
      });
      return `hidden got ${await a.promise}`;
    }),
  },
});

const front = service({
  name: 'sd_front',
  handlers: {
    /** Starts a private invocation and (carelessly) tells the client its id. */
    start: async (ctx: Context, tag: string) =>
      await ctx.serviceSendClient(hidden).wait(tag).invocationId,
    /** Calls an object key taken from its input. */
    callKey: async (ctx: Context, key: string) => ctx.objectClient(child, key).work(),
    /** Attaches to another invocation (its journal then names that invocation). */
    follow: async (ctx: Context, id: string) => ctx.invocation<string>(id).attach(),
    /** A handler may resolve any awakeable it is given, a private invocation's too. */
    release: async (ctx: Context, req: { id: string; value: string }) => {
      ctx.resolveAwakeable(req.id, req.value);
      return 'released';
    },
  },
});

/** Strings shaped like the sleep token the scripts once searched for, through steps, state and a sleep's name. */
const TOKENS = {
  plain: '@+5',
  nested: { note: '@+42', list: ['@+1', '"@+7"'], deep: { x: '@+0' } },
};
const tokens = object({
  name: 'sd_tokens',
  handlers: {
    roundTrip: handlers.handler({ inactivityTimeout: 0 }, async (ctx: ObjectContext) => {
      const plain = await ctx.run('plain', () => TOKENS.plain);
      const nested = await ctx.run('nested', () => TOKENS.nested);
      ctx.set('s', '@+3');
      // A sleep named like the token; with no inactivity timeout it suspends, and what follows
      // runs after a replay of everything above from the journal.
      await ctx.sleep(20, '@+9');
      return { plain, nested, state: await ctx.get<string>('s') };
    }),
    /** State only: completed eagerly (one accept script writes journal and state). */
    setOnly: async (ctx: ObjectContext, v: string) => {
      ctx.set('v', v);
      return (await ctx.get<string>('v')) ?? null;
    },
  },
});

/** The signup example, as shipped: its emailed link carries a `ctx.rand.uuidv4()` secret. */
const signup = userSignup({
  createUser: async () => undefined,
  activateUser: async () => undefined,
  sendEmail: async (mail) => {
    published.set(`mail:${mail.to}`, mail.link);
  },
});

// ------------------------------------------------------------------ the attack

describe('the public ingress cannot bend a journal', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let capped: LatchkeyServer;
  const cappedPrefix = newPrefix();
  let redis: RawRedis;
  let healthy = 0;

  /** The keyspace at rest (see restingKeyspace). */
  const atRest = (): Promise<Keyspace> => restingKeyspace(redis, prefix);

  /** A normal call still works. */
  async function expectHealthy(): Promise<void> {
    const res = await post(
      server.url,
      `/sd_tokens/healthy-${++healthy}/setOnly`,
      `fine ${healthy}`,
    );
    expect(res).toMatchObject({ status: 200, body: `fine ${healthy}` });
  }

  /** The journal of an invocation, as the store has it. */
  async function journalOf(id: string): Promise<{ k: string; n?: string }[]> {
    return (await server.store.describe(id, true))?.journal ?? [];
  }

  /** Waits until entry `index` of the invocation is committed with kind `k`. */
  async function committed(id: string, index: number, k: string): Promise<void> {
    await until(
      `entry ${index} (${k}) of ${id}`,
      async () => (await journalOf(id))[index]?.k === k,
    );
  }

  /** Resolves and rejects every forged id; every answer must be 404 NOT_FOUND. */
  async function forge(ids: string[], value: unknown = 'forged'): Promise<void> {
    for (const id of ids) {
      for (const op of ['resolve', 'reject']) {
        const res = await post(server.url, `/restate/awakeables/${id}/${op}`, value);
        expect(res.status, `${op} ${id}`).toBe(404);
        expect(res.body).toMatchObject({ code: 404, errorCode: 'NOT_FOUND' });
      }
    }
    const ws = await FrameSocket.open(server.url);
    try {
      for (const [i, id] of ids.entries()) {
        const answer = await ws.request({
          id: `f${i}`,
          type: 'resolveAwakeable',
          awakeableId: id,
          value,
        });
        expect(answer).toMatchObject({ type: 'error', code: 404, errorCode: 'NOT_FOUND' });
      }
    } finally {
      ws.close();
    }
  }

  /** Sends a call and returns its invocation id (from the accepted frame) and its result frame. */
  async function startCall(
    frame: Record<string, unknown>,
  ): Promise<{ id: string; result: Promise<Record<string, unknown>>; ws: FrameSocket }> {
    const ws = await FrameSocket.open(server.url);
    const reqId = `c-${Math.random()}`;
    const accepted = await ws.request({ id: reqId, type: 'call', ...frame }, ['accepted', 'error']);
    expect(accepted['type']).toBe('accepted');
    const result = ws.next('the result', (f) => f['id'] === reqId && f['type'] === 'result');
    return { id: String(accepted['invocationId']), result, ws };
  }

  beforeAll(async () => {
    redis = rawClient(redisTarget);
    const store = { stalledIntervalMs: 600_000, leaseMs: 600_000, lockDurationMs: 600_000 };
    server = await startServer(
      redisTarget,
      prefix,
      [sleeper, stepper, child, parent, approval, waiter, hidden, front, tokens, signup],
      { store },
    );
    capped = await startServer(redisTarget, cappedPrefix, [waiter], {
      store: { ...store, maxCompletions: 2 },
    });
    await expectHealthy();
  });
  afterAll(async () => {
    for (const g of gates.values()) g.open();
    await server?.close();
    await capped?.close();
    redis?.disconnect();
    await deletePrefix(redisTarget, prefix);
    await deletePrefix(redisTarget, cappedPrefix);
  });

  describe('forged completions are refused and change nothing; the real outcome is delivered', () => {
    it('into a durable sleep: it still ends no earlier than asked', async () => {
      const started = Date.now();
      const call = await startCall({ service: 'sd_sleep', handler: 'nap', input: 5000 });
      await committed(call.id, 0, 'sleep');
      const before = await atRest();
      await forge(forgedAwakeableIds(call.id, 0));
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      expect(await call.result).toMatchObject({ ok: true, value: 'rested' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
      call.ws.close();
    });

    it('into a ctx.run step in progress: the step’s own result is the outcome and the journal', async () => {
      const call = await startCall({ service: 'sd_step', handler: 'step', key: 'r1' });
      await until('the step to start', () => gates.has('step:r1'));
      const before = await atRest();
      await forge(
        [...forgedAwakeableIds(call.id, 0), ...forgedAwakeableIds(call.id, 1)],
        'forged step result',
      );
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      gateOf('step:r1').open();
      expect(await call.result).toMatchObject({ ok: true, value: 'real' });
      expect(await journalOf(call.id)).toEqual([{ k: 'run', n: 'slow', v: 'real' }]);
      call.ws.close();
    });

    it('into a pending call: the caller gets the child’s result, once the child is done', async () => {
      const call = await startCall({ service: 'sd_parent', handler: 'ask', key: 'c1' });
      await committed(call.id, 0, 'call');
      await until('the child to start', () => gates.has('child:c1'));
      const before = await atRest();
      await forge(forgedAwakeableIds(call.id, 0), 'forged child result');
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      gateOf('child:c1').open();
      expect(await call.result).toMatchObject({ ok: true, value: 'child c1 done' });
      call.ws.close();
    });

    it('into a workflow’s durable promise: only its own handler resolves it', async () => {
      const sent = await post(server.url, '/sd_approval/w1/run/send', undefined);
      expect(sent.status).toBe(202);
      const id = (sent.body as { invocationId: string }).invocationId;
      await committed(id, 0, 'pget');
      const before = await atRest();
      await forge(forgedAwakeableIds(id, 0), 'mallory');
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      expect(await post(server.url, '/sd_approval/w1/approve', 'alice')).toMatchObject({
        status: 200,
        body: 'done',
      });
      const out = await until('the workflow output', async () => {
        const r = await fetch(`${server.url}/restate/workflow/sd_approval/w1/output`);
        return r.status === 200 ? ((await r.json()) as unknown) : undefined;
      });
      expect(out).toBe('approved by alice');
    });

    it('into an awakeable, with a guessed secret or the old id format; then the real id resolves it once', async () => {
      const call = await startCall({ service: 'sd_wait', handler: 'wait', key: 'a1' });
      const realId = await until('the published awakeable id', () => published.get('wait:a1'));
      const before = await atRest();
      // The same invocation and index with another secret, the old format, and the real secret at another index.
      const body = Buffer.from(realId.slice(6), 'base64url').toString();
      const atOtherIndex = `sign_1${Buffer.from(body.replace(/:0:/, ':1:')).toString('base64url')}`;
      await forge([...forgedAwakeableIds(call.id, 0), atOtherIndex], 'forged');
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      expect(
        (await post(server.url, `/restate/awakeables/${realId}/resolve`, 'the real value')).status,
      ).toBe(202);
      expect(await call.result).toMatchObject({ ok: true, value: 'got the real value' });
      // Once completed, the real id is refused too.
      expect(
        (await post(server.url, `/restate/awakeables/${realId}/resolve`, 'again')).status,
      ).toBe(404);
      call.ws.close();
    });

    it('a flood: 200 forged 100 KiB completions into one waiting invocation are all refused and store nothing', async () => {
      const call = await startCall({ service: 'sd_wait', handler: 'wait', key: 'flood' });
      const realId = await until('the published awakeable id', () => published.get('wait:flood'));
      const before = await atRest();
      const big = 'x'.repeat(100 * 1024);
      const statuses: number[] = [];
      for (let batch = 0; batch < 20; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => {
            const [legacy, guessed] = forgedAwakeableIds(call.id, (batch * 10 + i) % 4);
            return post(
              server.url,
              `/restate/awakeables/${i % 2 === 0 ? legacy : guessed}/resolve`,
              big,
            );
          }),
        );
        statuses.push(...answers.map((a) => a.status));
      }
      expect(statuses).toHaveLength(200);
      expect(new Set(statuses)).toEqual(new Set([404]));
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      expect(
        (await post(server.url, `/restate/awakeables/${realId}/resolve`, 'survived')).status,
      ).toBe(202);
      expect(await call.result).toMatchObject({ ok: true, value: 'got survived' });
      call.ws.close();
    });

    it('an invocation takes at most maxCompletions completions from clients (429 beyond), changing nothing', async () => {
      const sent = await post(capped.url, '/sd_wait/cap/three/send', undefined);
      const id = (sent.body as { invocationId: string }).invocationId;
      for (let i = 0; i < 2; i++) {
        const awk = await until(`awakeable ${i}`, () => published.get(`three:cap:${i}`));
        expect((await post(capped.url, `/restate/awakeables/${awk}/resolve`, `v${i}`)).status).toBe(
          202,
        );
      }
      const third = await until('awakeable 2', () => published.get('three:cap:2'));
      // Once the invocation has settled (in always-suspend mode it is still suspending here).
      const before = await restingKeyspace(redis, cappedPrefix);
      const res = await post(capped.url, `/restate/awakeables/${third}/resolve`, 'v2');
      expect(res).toMatchObject({
        status: 429,
        body: { code: 429, errorCode: 'TOO_MANY_COMPLETIONS' },
      });
      expect(await snapshotKeyspace(redis, cappedPrefix)).toEqual(before);
      expect((await capped.store.describe(id))?.status).not.toBe('completed');
    });
  });

  describe('private invocations are invisible to the public ingress', () => {
    it('their awakeables, attach, output, subscribe and cancel answer 404 on HTTP and WS; a handler still resolves them', async () => {
      const started = await post(server.url, '/sd_front/start', 'p1');
      expect(started.status).toBe(200);
      const id = started.body as string;
      const realAwk = await until('the private awakeable id', () => published.get('hidden:p1'));
      const before = await atRest();
      // Even the real awakeable id is refused: the invocation is private.
      await forge([realAwk], 'from outside');
      for (const path of [
        `/restate/invocation/${id}/output`,
        `/restate/attach/${id}`,
        `/restate/output/${id}`,
      ]) {
        const r = await fetch(`${server.url}${path}`);
        expect(r.status, path).toBe(404);
        expect(await r.json()).toMatchObject({ errorCode: 'NOT_FOUND' });
      }
      expect((await post(server.url, '/restate/output', { invocationId: id })).status).toBe(404);
      const ws = await FrameSocket.open(server.url);
      for (const type of ['attach', 'output', 'subscribe']) {
        expect(await ws.request({ id: type, type, invocationId: id })).toMatchObject({
          type: 'error',
          code: 404,
          errorCode: 'NOT_FOUND',
        });
      }
      expect(
        await ws.request({ id: 'cx', type: 'cancel', invocationId: id, token: 'guess' }),
      ).toMatchObject({ type: 'error', code: 404 });
      ws.close();
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      await expectHealthy();
      // A handler given the id resolves it.
      expect(
        await post(server.url, '/sd_front/release', { id: realAwk, value: 'inside' }),
      ).toMatchObject({ status: 200, body: 'released' });
      const outcome = await until(
        'the private invocation to complete',
        async () => (await server.store.describe(id))?.outcome,
      );
      expect(outcome).toEqual({ ok: true, value: JSON.stringify('hidden got inside') });
    });
  });

  describe('who may cancel', () => {
    it('only the client that started an invocation (it holds the token); others get 404 and change nothing', async () => {
      const owner = connect(`${server.url.replace('http', 'ws')}/ws`, { reconnect: false });
      const mallory = await FrameSocket.open(server.url);
      try {
        const running = owner.objectClient<typeof waiter>({ name: 'sd_wait' }, 'cx1').wait();
        running.catch(() => undefined);
        await until('the awakeable', () => published.get('wait:cx1'));
        const id = await until(
          'the invocation',
          async () =>
            (await server.store.list({ service: 'sd_wait', key: 'cx1' })).invocations[0]?.id,
        );
        const before = await atRest();
        for (const f of [{}, { token: 'not-the-token' }, { token: '' }]) {
          expect(
            await mallory.request({
              id: `m${JSON.stringify(f)}`,
              type: 'cancel',
              invocationId: id,
              ...f,
            }),
          ).toMatchObject({
            type: 'error',
            code: 404,
            errorCode: 'NOT_FOUND',
          });
        }
        expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
        await expectHealthy();
        // The owner's client sends the token it was given in `accepted`.
        await owner.cancel(id);
        const err = await running.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(CallError);
        expect(err).toMatchObject({ status: 409 });
      } finally {
        await owner.close();
        mallory.close();
      }
    });

    it('the HTTP ingress has no cancel route', async () => {
      const sent = await post(server.url, '/sd_approval/w-cancel/run/send', undefined);
      const id = (sent.body as { invocationId: string }).invocationId;
      await committed(id, 0, 'pget');
      const before = await atRest();
      for (const path of [
        `/restate/invocation/${id}/cancel`,
        `/restate/invocations/${id}/cancel`,
      ]) {
        for (const method of ['POST', 'PATCH', 'DELETE']) {
          const r = await fetch(`${server.url}${path}`, { method });
          expect([404, 405], `${method} ${path}`).toContain(r.status);
        }
      }
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
      expect((await server.store.describe(id))?.status).not.toBe('completed');
    });
  });

  describe('secrets cannot be derived from what a client learns', () => {
    it('the signup example’s emailed secret: not the id-seeded one, not derivable from the id; a guess does not verify', async () => {
      const submit = async (
        user: string,
      ): Promise<{ secret: string; id: string; spy: FrameSocket }> => {
        const submitted = await post(server.url, `/user-signup/${user}/run/send`, {
          email: `${user}@example.com`,
          name: user,
        });
        expect(submitted.status).toBe(202);
        const link = await until('the emailed link', () =>
          published.get(`mail:${user}@example.com`),
        );
        // The attacker subscribes by workflow key and learns the run's invocation id.
        const spy = await FrameSocket.open(server.url);
        const sub = await spy.request({
          id: 's',
          type: 'subscribe',
          workflow: 'user-signup',
          key: user,
        });
        await spy.next('a journal event', (f) => f['type'] === 'event');
        return {
          secret: new URL(link).searchParams.get('secret')!,
          id: String(sub['invocationId']),
          spy,
        };
      };
      const victim = await submit('victim');
      // What the attacker computes from the id: the id-seeded generator's draw, and the engine's
      // own generator keyed with the id instead of the secret seed.
      const bytes = Buffer.from(deriveSecret(victim.id, 'rand:0').subarray(0, 16));
      bytes[6] = (bytes[6]! & 0x0f) | 0x40;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      const h = bytes.toString('hex');
      const guesses = [
        uuidSeededById(victim.id),
        `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
      ];
      for (const guess of guesses) expect(guess).not.toBe(victim.secret);
      // The attacker clicks with its best guess: the run ends, not verified.
      expect(
        await post(server.url, '/user-signup/victim/click', { secret: guesses[0] }),
      ).toMatchObject({ status: 200 });
      const attacked = await victim.spy.next(
        'the result',
        (f) => f['id'] === 's' && f['type'] === 'result',
      );
      expect(attacked).toMatchObject({ ok: true, value: { userId: 'victim', verified: false } });
      // The seed itself appears in nothing a client received.
      const [invKey] = await keysOnMasters(redis, `${prefix}:*:inv:${victim.id}`);
      const seed = await redis.hget(invKey!, 'rs');
      expect(seed).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(victim.spy.raw.join('\n')).not.toContain(seed!);
      victim.spy.close();
      // The emailed secret verifies (another user).
      const user = await submit('genuine');
      expect(
        await post(server.url, '/user-signup/genuine/click', { secret: user.secret }),
      ).toMatchObject({ status: 200 });
      const genuine = await user.spy.next(
        'the result',
        (f) => f['id'] === 's' && f['type'] === 'result',
      );
      expect(genuine).toMatchObject({ ok: true, value: { userId: 'genuine', verified: true } });
      user.spy.close();
    });

    it('child ids are not derived from the parent id', async () => {
      const call = await startCall({ service: 'sd_parent', handler: 'ask', key: 'kid' });
      await committed(call.id, 0, 'call');
      const journal = (await server.store.describe(call.id, true))!.journal!;
      const childId = (journal[0] as { id: string }).id;
      expect(childId.slice(4 + 2)).not.toBe(childIdDigestFromParent(call.id, 0));
      // Guessing the child from the parent's id: nothing there.
      const guess = `inv_${childId.slice(4, 6)}${childIdDigestFromParent(call.id, 0)}`;
      expect((await fetch(`${server.url}/restate/invocation/${guess}/output`)).status).toBe(404);
      gateOf('child:kid').open();
      expect(await call.result).toMatchObject({ ok: true, value: 'child kid done' });
      call.ws.close();
    });

    it('a subscriber sees the kind of an entry that names another invocation, not the id it names', async () => {
      const target = await post(server.url, '/sd_tokens/followed/setOnly', 'x');
      const targetId = target.headers.get('x-restate-id')!;
      const call = await startCall({ service: 'sd_front', handler: 'follow', input: targetId });
      expect(await call.result).toMatchObject({ ok: true, value: 'x' });
      const sub = await call.ws.request({ id: 'sub', type: 'subscribe', invocationId: call.id });
      expect(sub['type']).toBe('subscribed');
      await call.ws.next(
        'the subscription result',
        (f) => f['id'] === 'sub' && f['type'] === 'result',
      );
      const events = call.ws.frames
        .filter((f) => f['id'] === 'sub' && f['type'] === 'event')
        .map((f) => f['event']);
      expect(events).toContainEqual({ kind: 'journal', index: 0, entry: { k: 'attach' } });
      expect(call.ws.raw.filter((r) => r.includes('"sub"')).join('\n')).not.toContain(targetId);
      call.ws.close();
    });
  });

  describe('timers are safe whatever Redis holds', () => {
    const startSource = scriptSources().get('startAttempt')!;
    const startSha = createHash('sha1').update(startSource).digest('hex');

    for (const wake of ['1e300', '99999999999999999999999', 'not a number', '-5', '']) {
      it(`a delayed invocation whose stored wake time is ${JSON.stringify(wake)} is started at most a few times, never in a loop`, async () => {
        const sent = await post(server.url, '/sd_sleep/nap/send?delay=600000', 1);
        expect(sent.status).toBe(202);
        const id = (sent.body as { invocationId: string }).invocationId;
        const [invKey] = await keysOnMasters(redis, `${prefix}:*:inv:${id}`);
        const dueKey = invKey!.replace(/inv:.*$/, 'due');
        const monitor = await startMonitor(redisTarget);
        try {
          await redis.hset(invKey!, 'wake', wake);
          // Due now: the reconciler dispatches it and the start script decides.
          await redis.zadd(dueKey, 0, id);
          // Watch 12 reconciler sweeps of this partition go by (an event, not a sleep).
          const sweeps = (): number =>
            monitor.commands.filter(
              (c) =>
                c.args[0]?.toLowerCase() === 'evalsha' &&
                c.args.includes(dueKey) &&
                c.args[2] === '2',
            ).length;
          await until('12 reconciler sweeps', () => sweeps() >= 12, 60_000);
          await monitor.caughtUp();
          const starts = monitor.commands.filter((c) => {
            const cmd = c.args[0]?.toLowerCase();
            return (
              ((cmd === 'evalsha' && c.args[1] === startSha) ||
                (cmd === 'eval' && c.args[1] === startSource)) &&
              c.args.includes(id)
            );
          }).length;
          expect(starts).toBeGreaterThanOrEqual(1);
          expect(starts).toBeLessThanOrEqual(3);
          const info = await server.store.describe(id);
          // A wake time that is no number counts as due (it runs); any other waits.
          if (wake === '1e300' || wake === '99999999999999999999999')
            expect(info?.status).toBe('delayed');
          else
            await until(
              'the invocation to run',
              async () => (await server.store.describe(id))?.status === 'completed',
            );
        } finally {
          monitor.close();
        }
      });
    }

    it('a sleep or a delayed send longer than the engine allows fails the handler terminally (400), journaling nothing', async () => {
      for (const handler of ['forever', 'laterForever']) {
        const res = await post(server.url, `/sd_sleep/${handler}`, undefined);
        expect(res.status, handler).toBe(400);
        expect((res.body as { message: string }).message).toMatch(
          /exceeds the maximum of 3153600000000 ms/,
        );
        const id = res.headers.get('x-restate-id')!;
        expect(await journalOf(id)).toEqual([]);
      }
    });
  });

  describe('names from handler code', () => {
    it('a call to an object key that is not well-formed Unicode fails the handler terminally (400), journaling nothing', async () => {
      // The input is valid JSON whose string holds a lone surrogate.
      const res = await post(server.url, '/sd_front/callKey', '"\\ud800"', { 'x-raw': '1' });
      expect(res.status).toBe(400);
      expect((res.body as { message: string }).message).toBe(
        'the key of a call or send must be a well-formed Unicode string',
      );
      expect(await journalOf(res.headers.get('x-restate-id')!)).toEqual([]);
      await expectHealthy();
    });
  });

  describe('no in-band tokens in user data', () => {
    it('"@+…" strings in steps, nested values, state and a sleep’s name come back intact after a forced replay', async () => {
      const res = await post(server.url, '/sd_tokens/t1/roundTrip', undefined);
      expect(res).toMatchObject({
        status: 200,
        body: { plain: TOKENS.plain, nested: TOKENS.nested, state: '@+3' },
      });
      const id = res.headers.get('x-restate-id')!;
      const journal = await journalOf(id);
      expect(journal.slice(0, 3)).toEqual([
        { k: 'run', n: 'plain', v: TOKENS.plain },
        { k: 'run', n: 'nested', v: TOKENS.nested },
        { k: 'set', n: 's', v: '@+3' },
      ]);
      expect(journal[3]).toMatchObject({ k: 'sleep', n: '@+9', due: expect.any(Number) });
      expect((await server.store.getState('sd_tokens', 't1')).get('s')).toBe('"@+3"');
      // State written by an eagerly completed invocation (its journal stored whole at accept).
      for (const v of ['@+5', '"@+6"']) {
        const eager = await post(server.url, '/sd_tokens/t2/setOnly', v);
        expect(eager).toMatchObject({ status: 200, body: v });
        expect((await server.store.getState('sd_tokens', 't2')).get('v')).toBe(JSON.stringify(v));
      }
    });
  });
});
