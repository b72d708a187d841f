/**
 * Restate compatibility: the official `@restatedev/restate-sdk-clients`
 * package, pointed at Latchkey's HTTP ingress, drives services, objects and
 * workflows exactly as it drives a Restate server (typed proxies, delayed and
 * idempotent sends with `result()`, workflow submit/attach/output,
 * re-submission, awakeables). Nothing here talks to the ingress except the
 * Restate client.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as clients from '@restatedev/restate-sdk-clients';
import {
  TerminalError,
  handlers,
  object,
  serde,
  service,
  workflow,
  type Context,
  type Definition,
  type HandlerWrapper,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
  type ServiceKind,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { deletePrefix, newPrefix, startServer, until } from './helpers/harness.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');

/**
 * The handler signatures of a Latchkey definition, as Restate's typed proxies
 * want them (`serviceClient<Api<typeof greeter>>(greeter)`): a handler wrapped
 * with `handlers.*` is unwrapped to its function.
 */
type Api<D> =
  D extends Definition<ServiceKind, string, infer H>
    ? { [K in keyof H]: H[K] extends HandlerWrapper<infer F> ? F : H[K] }
    : never;

const greeter = service({
  name: 'rc_greeter',
  handlers: {
    greet: async (_ctx: Context, name: string) => `Hello, ${name}!`,
    header: async (ctx: Context, name: string) => ctx.request().headers.get(name) ?? null,
    // Counts its executions so idempotent calls can be told apart from re-runs.
    once: async (ctx: Context, tag: string) => {
      const n = await ctx.run(
        'count',
        () => (executions.set(tag, (executions.get(tag) ?? 0) + 1), executions.get(tag)!),
      );
      return { tag, n };
    },
    fail: async (_ctx: Context, why: string) => {
      throw new TerminalError(`refused: ${why}`, { errorCode: 418 });
    },
  },
});
const executions = new Map<string, number>();

const counter = object({
  name: 'rc_counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('v')) ?? 0) + n;
      ctx.set('v', v);
      // When the handler ran (local clock = the store's clock on this machine).
      const at = await ctx.run('at', () => Date.now());
      return { value: v, at };
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('v')) ?? 0,
    ),
    /** Publishes an awakeable's id (into Redis, from a journaled step), then waits for someone to complete it. */
    request: async (ctx: ObjectContext, what: string) => {
      const awk = ctx.awakeable<string>();
      await ctx.run('publish', () =>
        published
          .rpush(`${publishPrefix}:test:awakeables:${ctx.key}`, awk.id)
          .then(() => undefined),
      );
      return `${what}: ${await awk.promise}`;
    },
  },
});

/** Where `request` publishes its awakeable ids (the test's Redis, under the test's prefix). */
let published: RawRedis;
let publishPrefix = '';

/** Waits for its signal `go`; `signal` resolves another invocation's signal (Restate's signals). */
const signals = service({
  name: 'rc_signals',
  handlers: {
    wait: async (ctx: Context, tag: string) => `${tag} go: ${await ctx.signal<string>('go')}`,
    signal: async (ctx: Context, req: { id: string; value: string }) => {
      ctx.invocation(req.id).signal<string>('go').resolve(req.value);
      return 'signalled';
    },
  },
});

/** Raw bytes in and out (`serde.binary`). */
const bytes = service({
  name: 'rc_bytes',
  handlers: {
    reverse: handlers.handler(
      { input: serde.binary, output: serde.binary },
      async (_ctx: Context, data: Uint8Array): Promise<Uint8Array> =>
        Uint8Array.from(data).reverse(),
    ),
  },
});

const signup = workflow({
  name: 'rc_signup',
  handlers: {
    run: async (ctx: WorkflowContext, email: string) => {
      const user = await ctx.run('create', () => `user-${email}`);
      const code = await ctx.promise<string>('confirmed').get();
      return { user, email, code };
    },
    confirm: async (ctx: WorkflowSharedContext, code: string) => {
      await ctx.promise<string>('confirmed').resolve(code);
      return 'confirmed';
    },
    status: async (ctx: WorkflowSharedContext) =>
      (await ctx.promise<string>('confirmed').peek()) === undefined ? 'waiting' : 'confirmed',
  },
});

describe('@restatedev/restate-sdk-clients against Latchkey', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let ingress: clients.Ingress;
  const requests: string[] = [];
  beforeAll(async () => {
    published = rawClient(redisTarget);
    publishPrefix = prefix;
    server = await startServer(redisTarget, prefix, [greeter, counter, signup, signals, bytes]);
    // Every request the Restate client makes is recorded (method, path, status) so the tests can show
    // which ingress routes it used.
    const recordingFetch: typeof fetch = async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const res = await fetch(input, init);
      requests.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search} -> ${res.status}`);
      return res;
    };
    ingress = clients.connect({ url: server.url, fetch: recordingFetch });
  });
  afterAll(async () => {
    await server?.close();
    published?.disconnect();
    await deletePrefix(redisTarget, prefix);
  });

  it('calls service handlers through the typed proxy (result, headers, idempotency key, terminal error)', async () => {
    const g = ingress.serviceClient<Api<typeof greeter>>(greeter);
    expect(await g.greet('Ada')).toBe('Hello, Ada!');
    // A `{ name }` reference works as well as the definition.
    expect(
      await ingress.serviceClient<Api<typeof greeter>>({ name: 'rc_greeter' }).greet('Bob'),
    ).toBe('Hello, Bob!');
    expect(await g.header('x-compat', clients.rpc.opts({ headers: { 'x-compat': 'yes' } }))).toBe(
      'yes',
    );
    // The generic call routes by name.
    expect(
      await ingress.call<string, string>({
        service: 'rc_greeter',
        handler: 'greet',
        parameter: 'Cy',
        opts: clients.Opts.from({ input: clients.serde.json, output: clients.serde.json }),
      }),
    ).toBe('Hello, Cy!');

    // The same idempotency key returns the first result without running the handler again.
    const first = await g.once('t1', clients.rpc.opts({ idempotencyKey: 'rc-once-1' }));
    const second = await g.once('t1', clients.rpc.opts({ idempotencyKey: 'rc-once-1' }));
    expect(first).toEqual({ tag: 't1', n: 1 });
    expect(second).toEqual(first);
    expect(executions.get('t1')).toBe(1);

    // A terminal error surfaces as the client's HttpCallError with the error's status code.
    const err = await g.fail('no').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(clients.HttpCallError);
    expect((err as clients.HttpCallError).status).toBe(418);
    expect(JSON.parse((err as clients.HttpCallError).responseText)).toMatchObject({
      code: 418,
      message: 'refused: no',
    });
  });

  it('calls virtual object handlers through the typed proxy with exact state per key', async () => {
    const a = ingress.objectClient<Api<typeof counter>>(counter, 'obj-a');
    const b = ingress.objectClient<Api<typeof counter>>({ name: 'rc_counter' }, 'obj-b');
    expect((await a.add(2)).value).toBe(2);
    expect((await a.add(3)).value).toBe(5);
    expect((await b.add(10)).value).toBe(10);
    expect(await a.get()).toBe(5);
    expect(await b.get()).toBe(10);
  });

  it('objectSendClient with a delay and an idempotency key, then result(): runs once, no earlier than the delay', async () => {
    const delay = 1500;
    const key = 'obj-delayed';
    const send = ingress.objectSendClient<Api<typeof counter>>(counter, key);
    const sentAt = Date.now();
    const handle = await send.add(
      7,
      clients.rpc.sendOpts({ delay, idempotencyKey: 'rc-delayed-1' }),
    );
    expect(handle.status).toBe('Accepted');
    expect(handle.invocationId).toMatch(/^inv_/);
    expect(handle.attachable).toBe(true);

    // Re-sending with the same idempotency key latches on to the same invocation.
    const again = await send.add(
      7,
      clients.rpc.sendOpts({ delay, idempotencyKey: 'rc-delayed-1' }),
    );
    expect(again).toEqual({
      invocationId: handle.invocationId,
      status: 'PreviouslyAccepted',
      attachable: true,
    });

    expect(requests.slice(-2)).toEqual([
      `POST /rc_counter/${key}/add/send?delay=${delay}ms -> 202`,
      `POST /rc_counter/${key}/add/send?delay=${delay}ms -> 202`,
    ]);

    const result = await ingress.result(handle);
    expect(requests.at(-1)).toBe(`GET /restate/invocation/${handle.invocationId}/attach -> 200`);
    expect(result).toMatchObject({ value: 7 });
    expect((result as { at: number }).at).toBeGreaterThanOrEqual(sentAt + delay);
    // Exactly one execution: the state holds one increment.
    expect(await ingress.objectClient<Api<typeof counter>>(counter, key).get()).toBe(7);
    // result() of the duplicate answers the same outcome.
    expect(await ingress.result(again)).toEqual(result);
  });

  it('workflowSubmit -> workflowOutput (not ready) -> workflowAttach -> workflowOutput, and re-submission is PreviouslyAccepted', async () => {
    const wf = ingress.workflowClient<Api<typeof signup>>(signup, 'wf-1');
    const submission = await wf.workflowSubmit('ada@example.com');
    expect(submission.status).toBe('Accepted');
    expect(submission.invocationId).toMatch(/^inv_/);

    // The run waits for its durable promise: the output is not ready (470) yet.
    expect(requests.at(-1)).toBe('POST /rc_signup/wf-1/run/send -> 202');
    const early = await wf.workflowOutput();
    expect(early.ready).toBe(false);
    expect(requests.at(-1)).toBe('GET /restate/workflow/rc_signup/wf-1/output -> 470');
    expect(await wf.status()).toBe('waiting');

    // Submitting the same workflow id again returns the original invocation.
    const resubmitted = await wf.workflowSubmit('someone-else@example.com');
    expect(resubmitted).toEqual({
      invocationId: submission.invocationId,
      status: 'PreviouslyAccepted',
      attachable: true,
    });

    const attached = wf.workflowAttach();
    expect(await wf.confirm('c-1234')).toBe('confirmed');
    const expected = { user: 'user-ada@example.com', email: 'ada@example.com', code: 'c-1234' };
    expect(await attached).toEqual(expected);

    const output = await wf.workflowOutput();
    expect(requests.at(-1)).toBe('GET /restate/workflow/rc_signup/wf-1/output -> 200');
    expect(output.ready).toBe(true);
    expect(output.result).toEqual(expected);
    // The submission handle attaches by invocation id, too.
    expect(await ingress.result(submission)).toEqual(expected);
    expect(await wf.status()).toBe('confirmed');
  });

  it('signals: a send waits for its signal, another call resolves it, result() has the value', async () => {
    // With an idempotency key, so that the client may attach to the send's result.
    const handle = await ingress
      .serviceSendClient<Api<typeof signals>>(signals)
      .wait('t1', clients.rpc.sendOpts({ idempotencyKey: 'rc-signal-1' }));
    expect(handle.status).toBe('Accepted');
    expect(
      await ingress
        .serviceClient<Api<typeof signals>>(signals)
        .signal({ id: handle.invocationId, value: 'green' }),
    ).toBe('signalled');
    expect(await ingress.result(handle)).toBe('t1 go: green');
  });

  it('binary handlers with serde.binary: bytes in, bytes out', async () => {
    const data = Uint8Array.from([1, 2, 3, 250, 0]);
    const opts = clients.rpc.opts({ input: clients.serde.binary, output: clients.serde.binary });
    const out = await ingress.serviceClient<Api<typeof bytes>>(bytes).reverse(data, opts);
    expect(requests.at(-1)).toBe('POST /rc_bytes/reverse -> 200');
    expect(Uint8Array.from(out)).toEqual(Uint8Array.from([0, 250, 3, 2, 1]));
  });

  it('resolveAwakeable / rejectAwakeable complete awakeables a handler created and published', async () => {
    const key = 'obj-awk';
    const list = `${prefix}:test:awakeables:${key}`;
    const obj = ingress.objectClient<Api<typeof counter>>(counter, key);
    const settle = <T>(
      p: PromiseLike<T>,
    ): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> =>
      Promise.resolve(p).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );

    const call = settle(obj.request('approve deploy'));
    const id = await until(
      'the handler to publish its awakeable',
      async () => (await published.lindex(list, 0)) ?? undefined,
    );
    expect(id).toMatch(/^sign_1/);
    await ingress.resolveAwakeable(id, 'approved by ops');
    expect(requests.at(-1)).toBe(`POST /restate/a/${id}/resolve -> 202`);
    expect(await call).toEqual({ ok: true, value: 'approve deploy: approved by ops' });

    // The key is free again: the next request creates a fresh awakeable; reject it.
    const call2 = settle(obj.request('second'));
    const id2 = await until(
      'the second awakeable',
      async () => (await published.lindex(list, 1)) ?? undefined,
    );
    expect(id2).not.toBe(id);
    await ingress.rejectAwakeable(id2, 'denied by ops');
    expect(requests.at(-1)).toBe(`POST /restate/a/${id2}/reject -> 202`);
    const failed = await call2;
    expect(failed.ok).toBe(false);
    const err = (failed as { error: unknown }).error;
    expect(err).toBeInstanceOf(clients.HttpCallError);
    expect((err as clients.HttpCallError).status).toBe(500);
    expect(JSON.parse((err as clients.HttpCallError).responseText)).toMatchObject({
      message: 'denied by ops',
    });
  });
});
