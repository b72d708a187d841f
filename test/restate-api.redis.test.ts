/**
 * Restate's API where Restate programs rely on it (issue 14), over the real ingress:
 *
 * - signals: `ctx.signal(name)` awaited by one handler, `ctx.invocation(id).signal(name)
 *   .resolve/.reject` from another; before or after the await; in `RestatePromise.all/any/race/
 *   allSettled`, with `orTimeout`, mixed with `ctx.run` results; over HTTP and the WebSocket;
 * - `await ctx.promise(name)` in a workflow waits for the value, also in combinators;
 * - a handler that keeps failing (it calls a function that does not exist) ends up paused and
 *   visible in the admin API, not retried forever.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CancelledError,
  RestatePromise,
  TerminalError,
  TimeoutError,
  handlers,
  serde,
  service,
  workflow,
  type Serde,
  type Context,
  type LatchkeyServer,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { nextRetry } from '@latchkey/core/internal';
import { z } from 'zod';
import { CallError, connect } from '@latchkey/client';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

/** Invocation ids the waiting handlers publish (the workers run in this process), by tag. */
const ids = new Map<string, string>();

/** Publishes this invocation's id under `tag` (a journaled step), so a test can signal it. */
async function publish(ctx: Context, tag: string): Promise<void> {
  await ctx.run('publish', () => {
    ids.set(tag, ctx.request().id);
  });
}

/** What a settled combinator child looks like in a result. */
function settled(r: { status: string; value?: unknown; reason?: unknown }): string {
  return r.status === 'fulfilled' ? `ok:${String(r.value)}` : `err:${(r.reason as Error).message}`;
}

const waiter = service({
  name: 'ra_wait',
  handlers: {
    one: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      try {
        return `got ${await ctx.signal<string>('go')}`;
      } catch (e) {
        if (e instanceof TerminalError) return `rejected: ${e.message}`;
        throw e;
      }
    },
    /** Awaits `first`, then `second`, which may have been resolved long before. */
    inOrder: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      const a = await ctx.signal<string>('first');
      const b = await ctx.signal<string>('second');
      return `${a}+${b}`;
    },
    all: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      const step = ctx.run('step', () => 'stepped');
      return (
        await RestatePromise.all([ctx.signal<string>('a'), step, ctx.signal<string>('b')])
      ).join('|');
    },
    any: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      return await RestatePromise.any([ctx.signal<string>('a'), ctx.signal<string>('b')]);
    },
    race: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      return await RestatePromise.race([
        ctx.signal<string>('a'),
        ctx.sleep(600_000).map(() => 'slept'),
      ]);
    },
    allSettled: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      const step = ctx.run('step', () => 'stepped');
      const rs = await RestatePromise.allSettled([
        ctx.signal<string>('a'),
        ctx.signal<string>('b'),
        step,
      ]);
      return rs.map(settled).join('|');
    },
    timeout: async (ctx: Context, tag: string) => {
      await publish(ctx, tag);
      try {
        return await ctx.signal<string>('never').orTimeout(300);
      } catch (e) {
        return e instanceof TimeoutError ? 'timed out' : `other: ${(e as Error).message}`;
      }
    },
  },
});

const signaller = service({
  name: 'ra_signal',
  handlers: {
    resolve: async (ctx: Context, req: { id: string; name: string; value: string }) => {
      ctx.invocation(req.id).signal<string>(req.name).resolve(req.value);
      return 'resolved';
    },
    reject: async (ctx: Context, req: { id: string; name: string; reason: string }) => {
      ctx.invocation(req.id).signal(req.name).reject(req.reason);
      return 'rejected';
    },
  },
});

const approvals = workflow({
  name: 'ra_flow',
  handlers: {
    run: async (ctx: WorkflowContext) => {
      // Awaiting the durable promise itself, as Restate programs do.
      const first = await ctx.promise<string>('first');
      const either = await RestatePromise.any([
        ctx.promise<string>('left'),
        ctx.promise<string>('right'),
      ]);
      let late: string;
      try {
        late = await ctx.promise<string>('never').orTimeout(200);
      } catch (e) {
        late = e instanceof TimeoutError ? 'timed out' : 'other';
      }
      return { first, either, late };
    },
    resolve: async (ctx: WorkflowSharedContext, req: { name: string; value: string }) => {
      await ctx.promise<string>(req.name).resolve(req.value);
      return 'ok';
    },
  },
});

/** What a caught error looks like, as a handler sees it. */
function shape(e: unknown): Record<string, unknown> {
  const t = e as TerminalError;
  return {
    terminal: e instanceof TerminalError,
    name: t.name,
    code: t.code,
    message: t.message,
    metadata: t.metadata ?? null,
  };
}

const thrower = service({
  name: 'ra_throw',
  handlers: {
    fail: async (_ctx: Context, why: string) => {
      throw new TerminalError(`refused: ${why}`, {
        errorCode: 418,
        metadata: { reason: why, team: 'teapots' },
      });
    },
  },
});

const catcher = service({
  name: 'ra_catch',
  handlers: {
    viaCall: async (ctx: Context) => {
      try {
        return await ctx.serviceClient(thrower).fail('called');
      } catch (e) {
        return shape(e);
      }
    },
    viaRun: async (ctx: Context) => {
      try {
        return await ctx.run('fails', () => {
          throw new TerminalError('step refused', { errorCode: 422, metadata: { step: 'fails' } });
        });
      } catch (e) {
        return shape(e);
      }
    },
    /** Lets the callee's error through: the ingress reports it. */
    rethrow: async (ctx: Context) => ctx.serviceClient(thrower).fail('rethrown'),
  },
});

/** A custom serde: lines of text (`text/plain`), as a Restate program may bring its own. */
const lines: Serde<string[]> = {
  contentType: 'text/plain',
  serialize: (v) => new TextEncoder().encode(v.join('\n')),
  deserialize: (b) => new TextDecoder().decode(b).split('\n'),
};

/** A custom JSON serde: a Date travels as `{"iso": …}`, and the handler gets a Date. */
const dates: Serde<Date> = {
  contentType: 'application/json',
  serialize: (d) => new TextEncoder().encode(JSON.stringify({ iso: d.toISOString() })),
  deserialize: (b) => new Date((JSON.parse(new TextDecoder().decode(b)) as { iso: string }).iso),
};

const reverser = service({
  name: 'ra_rev',
  handlers: {
    /** Takes raw bytes and returns them reversed, as raw bytes. */
    reverse: handlers.handler(
      { input: serde.binary, output: serde.binary },
      async (_ctx: Context, data: Uint8Array) => {
        if (!(data instanceof Uint8Array)) throw new TerminalError(`not bytes: ${typeof data}`);
        return Uint8Array.from(data).reverse();
      },
    ),
  },
});

const bytes = service({
  name: 'ra_bytes',
  handlers: {
    /** Calls `reverse` from a handler: bytes in, bytes out (its serdes are known here). */
    reverseTwice: handlers.handler(
      { input: serde.binary, output: serde.binary },
      async (ctx: Context, data: Uint8Array) => {
        const once = await ctx.serviceClient(reverser).reverse(data);
        return ctx.serviceClient(reverser).reverse(once);
      },
    ),
    sorted: handlers.handler({ input: lines, output: lines }, async (_ctx: Context, ls: string[]) =>
      [...ls].sort(),
    ),
    nextDay: handlers.handler({ input: dates, output: dates }, async (_ctx: Context, d: Date) => {
      if (!(d instanceof Date)) throw new TerminalError('not a Date');
      return new Date(d.getTime() + 86_400_000);
    }),
    /** JSON validated with serde.schema (a Standard Schema: zod 4). */
    double: handlers.handler(
      { input: serde.schema(z.object({ n: z.number() })) },
      async (_ctx: Context, v: { n: number }) => v.n * 2,
    ),
  },
});

/** How often the code after the first step of `three` ran, by tag (the workers run in this process). */
const afterFirst = new Map<string, number>();
const stepper = service({
  name: 'ra_steps',
  handlers: {
    three: async (ctx: Context, tag: string) => {
      let sum = await ctx.run('step 1', () => 1);
      afterFirst.set(tag, (afterFirst.get(tag) ?? 0) + 1);
      sum += await ctx.run('step 2', () => 2);
      sum += await ctx.run('step 3', () => 3);
      return sum;
    },
  },
});

const broken = service({
  name: 'ra_broken',
  handlers: {
    missing: handlers.handler(
      { retryPolicy: { maxAttempts: 3, initialInterval: 10, maxInterval: 50 } },
      async (ctx: Context) => (ctx as unknown as { noSuchFunction(): string }).noSuchFunction(),
    ),
  },
});

describe('Restate API: signals, awaitable workflow promises, retry exhaustion', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;

  /** Starts handler `h` of ra_wait with a fresh tag (HTTP send); resolves with the invocation id once published. */
  async function start(h: string): Promise<{ id: string; tag: string }> {
    const tag = `${h}-${Math.random().toString(36).slice(2, 8)}`;
    const sent = await post(server.url, `/ra_wait/${h}/send`, tag);
    expect(sent.status).toBe(202);
    const id = await until(`the ${h} invocation id`, () => ids.get(tag));
    expect(id).toBe((sent.body as { invocationId: string }).invocationId);
    return { id, tag };
  }

  /** Signals `name` of invocation `id` from another handler (over HTTP). */
  async function signal(
    id: string,
    name: string,
    value: string,
    op: 'resolve' | 'reject' = 'resolve',
  ): Promise<void> {
    const body = op === 'resolve' ? { id, name, value } : { id, name, reason: value };
    expect(await post(server.url, `/ra_signal/${op}`, body)).toMatchObject({ status: 200 });
  }

  /** The result of an invocation (attach over HTTP). */
  async function result(id: string): Promise<{ status: number; body: unknown }> {
    const r = await fetch(`${server.url}/restate/invocation/${id}/attach`);
    return { status: r.status, body: (await r.json()) as unknown };
  }

  beforeAll(async () => {
    server = await startServer(
      redisTarget,
      prefix,
      [waiter, signaller, approvals, broken, stepper, thrower, catcher, bytes, reverser],
      { serve: { admin: { port: 0 } } },
    );
  });
  afterAll(async () => {
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  describe('signals', () => {
    it('a signal resolved by another handler is the awaited value', async () => {
      const { id } = await start('one');
      await signal(id, 'go', 'green');
      expect(await result(id)).toEqual({ status: 200, body: 'got green' });
    });

    it('a rejected signal surfaces as a TerminalError with the reason', async () => {
      const { id } = await start('one');
      await signal(id, 'go', 'no way', 'reject');
      expect(await result(id)).toEqual({ status: 200, body: 'rejected: no way' });
    });

    it('a signal resolved before anyone awaits it is kept; the first resolution wins', async () => {
      const { id } = await start('inOrder');
      await signal(id, 'second', 'two');
      await signal(id, 'second', 'ignored');
      await signal(id, 'first', 'one');
      expect(await result(id)).toEqual({ status: 200, body: 'one+two' });
    });

    it('all: every signal and the step', async () => {
      const { id } = await start('all');
      await signal(id, 'b', 'B');
      await signal(id, 'a', 'A');
      expect(await result(id)).toEqual({ status: 200, body: 'A|stepped|B' });
    });

    it('any: the first signal that succeeds (a rejected one is skipped)', async () => {
      const { id } = await start('any');
      await signal(id, 'a', 'nope', 'reject');
      await signal(id, 'b', 'B wins');
      expect(await result(id)).toEqual({ status: 200, body: 'B wins' });
    });

    it('race: the signal beats a long sleep', async () => {
      const { id } = await start('race');
      await signal(id, 'a', 'first past the post');
      expect(await result(id)).toEqual({ status: 200, body: 'first past the post' });
    });

    it('allSettled: a resolved signal, a rejected one, and the step', async () => {
      const { id } = await start('allSettled');
      await signal(id, 'a', 'fine');
      await signal(id, 'b', 'broken', 'reject');
      expect(await result(id)).toEqual({ status: 200, body: 'ok:fine|err:broken|ok:stepped' });
    });

    it('orTimeout: a signal nobody resolves times out, no earlier than asked', async () => {
      const started = Date.now();
      const { id } = await start('timeout');
      expect(await result(id)).toEqual({ status: 200, body: 'timed out' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    });

    it('over the WebSocket client: a call waits for its signal', async () => {
      const client = connect(`${server.url.replace('http', 'ws')}/ws`, { reconnect: false });
      try {
        const tag = `ws-${Math.random().toString(36).slice(2, 8)}`;
        const call = client.serviceClient<typeof waiter>({ name: 'ra_wait' }).one(tag);
        const id = await until('the invocation id', () => ids.get(tag));
        await client
          .serviceClient<typeof signaller>({ name: 'ra_signal' })
          .resolve({ id, name: 'go', value: 'over ws' });
        expect(await call).toBe('got over ws');
      } finally {
        await client.close();
      }
    });
  });

  describe('workflow promises are awaitable', () => {
    it('await ctx.promise(name) waits for the value, in any() and with orTimeout', async () => {
      const key = `wf-${Math.random().toString(36).slice(2, 8)}`;
      expect((await post(server.url, `/ra_flow/${key}/run/send`)).status).toBe(202);
      const output = (): Promise<number> =>
        fetch(`${server.url}/restate/workflow/ra_flow/${key}/output`).then((r) => r.status);
      // It waits: no output until the promise is resolved.
      await until('the run to be waiting', async () => (await output()) === 470);
      expect(
        await post(server.url, `/ra_flow/${key}/resolve`, { name: 'first', value: 'one' }),
      ).toMatchObject({ status: 200 });
      expect(
        await post(server.url, `/ra_flow/${key}/resolve`, { name: 'right', value: 'R' }),
      ).toMatchObject({ status: 200 });
      const res = await fetch(`${server.url}/restate/workflow/ra_flow/${key}/attach`);
      expect(await res.json()).toEqual({ first: 'one', either: 'R', late: 'timed out' });
    });
  });

  describe('terminal errors carry a numeric code and metadata, as in Restate', () => {
    it('the error classes: code is the HTTP-style number, kind the machine-readable name', () => {
      expect(new TerminalError('x')).toMatchObject({
        code: 500,
        kind: 'TERMINAL',
        metadata: undefined,
      });
      expect(new TerminalError('x', { errorCode: 418, metadata: { a: 'b' } })).toMatchObject({
        code: 418,
        errorCode: 418,
        metadata: { a: 'b' },
      });
      expect(new CancelledError()).toMatchObject({ code: 409, kind: 'CANCELLED' });
      expect(new TimeoutError()).toMatchObject({ code: 408, kind: 'TIMEOUT' });
      expect(new CancelledError()).toBeInstanceOf(TerminalError);
    });

    it('through a call: the caller catches a TerminalError with the callee’s code and metadata', async () => {
      expect(await post(server.url, '/ra_catch/viaCall')).toMatchObject({
        status: 200,
        body: {
          terminal: true,
          name: 'TerminalError',
          code: 418,
          message: 'refused: called',
          metadata: { reason: 'called', team: 'teapots' },
        },
      });
    });

    it('through ctx.run: the journaled failure keeps its code and metadata on every replay', async () => {
      expect(await post(server.url, '/ra_catch/viaRun')).toMatchObject({
        status: 200,
        body: {
          terminal: true,
          name: 'TerminalError',
          code: 422,
          message: 'step refused',
          metadata: { step: 'fails' },
        },
      });
    });

    it('in the ingress’s answer: HTTP status and body, and the WebSocket client’s CallError', async () => {
      const res = await post(server.url, '/ra_catch/rethrow');
      expect(res).toMatchObject({
        status: 418,
        body: {
          code: 418,
          errorCode: 'TERMINAL',
          message: 'refused: rethrown',
          metadata: { reason: 'rethrown', team: 'teapots' },
        },
      });
      const client = connect(`${server.url.replace('http', 'ws')}/ws`, { reconnect: false });
      try {
        const err = await client
          .serviceClient<typeof thrower>({ name: 'ra_throw' })
          .fail('over ws')
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(CallError);
        expect(err).toMatchObject({
          status: 418,
          code: 'TERMINAL',
          message: 'refused: over ws',
          metadata: { reason: 'over ws', team: 'teapots' },
        });
      } finally {
        await client.close();
      }
    });
  });

  describe('payload serdes: binary, custom, schema', () => {
    const data = Uint8Array.from([0, 1, 2, 255, 128, 10, 13]);

    it('serde.binary over HTTP: raw bytes in (any content type), raw bytes out (application/octet-stream)', async () => {
      const res = await fetch(`${server.url}/ra_rev/reverse`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: data,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(Uint8Array.from(data).reverse());
      // The result again through attach, by id: still bytes.
      const id = res.headers.get('x-restate-id')!;
      const attached = await fetch(`${server.url}/restate/invocation/${id}/output`);
      expect(new Uint8Array(await attached.arrayBuffer())).toEqual(Uint8Array.from(data).reverse());
    });

    it('between handlers: a binary call passes bytes and returns bytes', async () => {
      const res = await fetch(`${server.url}/ra_bytes/reverseTwice`, {
        method: 'POST',
        body: data,
      });
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(data);
    });

    it('over the WebSocket client: Uint8Array in and out', async () => {
      const client = connect(`${server.url.replace('http', 'ws')}/ws`, { reconnect: false });
      try {
        const out = await client.serviceClient<typeof reverser>({ name: 'ra_rev' }).reverse(data);
        expect(out).toBeInstanceOf(Uint8Array);
        expect(out).toEqual(Uint8Array.from(data).reverse());
      } finally {
        await client.close();
      }
    });

    it('a custom serde: its content type and its encoding both ways', async () => {
      const res = await fetch(`${server.url}/ra_bytes/sorted`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'pear\napple\nfig',
      });
      expect(res.headers.get('content-type')).toBe('text/plain');
      expect(await res.text()).toBe('apple\nfig\npear');
    });

    it('a custom serde with a JSON content type: its own encoding is used both ways', async () => {
      const res = await post(server.url, '/ra_bytes/nextDay', { iso: '2026-12-31T12:00:00.000Z' });
      expect(res).toMatchObject({ status: 200, body: { iso: '2027-01-01T12:00:00.000Z' } });
    });

    it('serde.schema: a Standard Schema validates JSON input (400 with issues otherwise)', async () => {
      expect(await post(server.url, '/ra_bytes/double', { n: 21 })).toMatchObject({
        status: 200,
        body: 42,
      });
      const bad = await post(server.url, '/ra_bytes/double', { n: 'x' });
      expect(bad).toMatchObject({
        status: 400,
        body: { errorCode: 'INVALID_INPUT', issues: [expect.objectContaining({ path: ['n'] })] },
      });
    });
  });

  describe('ingress routes of Restate 1.7', () => {
    it('POST /restate/lookup and /restate/output with the current body shapes (target: workflow / idempotentInvocation)', async () => {
      const key = `lk-${Math.random().toString(36).slice(2, 8)}`;
      const sent = await post(server.url, `/ra_flow/${key}/run/send`);
      const id = (sent.body as { invocationId: string }).invocationId;
      const byWorkflow = { target: 'workflow', workflowName: 'ra_flow', workflowKey: key };
      expect(await post(server.url, '/restate/lookup', byWorkflow)).toEqual({
        status: 200,
        body: { invocationId: id },
        headers: expect.anything(),
      });
      expect((await post(server.url, '/restate/output', byWorkflow)).status).toBe(470);
      const idem = await post(server.url, '/ra_wait/one/send', 'lookup-tag', {
        'idempotency-key': `lk-${key}`,
      });
      const byKey = {
        target: 'idempotentInvocation',
        service: 'ra_wait',
        handler: 'one',
        idempotencyKey: `lk-${key}`,
      };
      expect((await post(server.url, '/restate/lookup', byKey)).body).toEqual({
        invocationId: (idem.body as { invocationId: string }).invocationId,
      });
      const missing = await post(server.url, '/restate/lookup', {
        target: 'workflow',
        workflowName: 'ra_flow',
        workflowKey: 'nobody',
      });
      expect(missing).toMatchObject({ status: 404, body: { errorCode: 'NOT_FOUND' } });
    });
  });

  describe('the always-suspend test mode', () => {
    it('replays every step boundary: the code after the first of 3 steps runs 3 times there (once per later attempt), once otherwise', async () => {
      const tag = `steps-${Math.random().toString(36).slice(2, 8)}`;
      expect(await post(server.url, '/ra_steps/three', tag)).toMatchObject({
        status: 200,
        body: 6,
      });
      // Always-suspend: each committed step ends the attempt; the next replays the steps before.
      expect(afterFirst.get(tag)).toBe(process.env['LATCHKEY_INACTIVITY_TIMEOUT'] === '0' ? 3 : 1);
    });
  });

  describe('retries run out', () => {
    it('the default policy pauses after 70 attempts (Restate 1.7’s server default)', () => {
      expect(nextRetry(undefined, 1)).toEqual({ kind: 'retry', delayMs: 50 });
      expect(nextRetry(undefined, 69)).toMatchObject({ kind: 'retry' });
      expect(nextRetry(undefined, 70)).toEqual({ kind: 'pause' });
      expect(nextRetry({ maxAttempts: Infinity }, 1000)).toMatchObject({
        kind: 'retry',
        delayMs: 60_000,
      });
    });

    it('a handler calling a function that does not exist ends up paused, visible in the admin API', async () => {
      const sent = await post(server.url, '/ra_broken/missing/send');
      const id = (sent.body as { invocationId: string }).invocationId;
      const info = await until(
        'the invocation to be paused',
        async () => {
          const r = await fetch(`${server.adminUrl}/invocations/${id}`);
          const body = (await r.json()) as { status: string };
          return body.status === 'paused' ? body : undefined;
        },
        60_000,
      );
      expect(info).toMatchObject({
        status: 'paused',
        attempts: 3,
        lastFailure: { message: expect.stringMatching(/noSuchFunction is not a function/) },
      });
    });
  });
});
