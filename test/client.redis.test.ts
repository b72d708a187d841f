import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import {
  CallError,
  connect,
  type ConnectionState,
  type LatchkeyClient,
  type ProgressEvent,
  type SendResult,
  type Subscription,
} from '@latchkey/client';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import {
  awakeableIds,
  counter,
  greeter,
  job,
  startIngress,
  twoGates,
  waiter,
  wsServices,
} from './helpers/ws-services.js';

const redisTarget = inject('redisTarget');

/** Fast reconnection for tests. */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 300 };

/** Runs `p` expecting a CallError and returns it. */
async function callError(p: Promise<unknown>): Promise<CallError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CallError) return e;
    throw e;
  }
  throw new Error('expected a CallError, got a result');
}

/** `p`, or a rejection naming `what` after `ms` (so a lost result fails fast instead of hanging the test). */
function within<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** How many times each client opened its socket. */
const opens = new Map<LatchkeyClient, number>();

/** Connects a client that counts its (re)connections in {@link opens}. */
function connectCounting(url: string, opts: Parameters<typeof connect>[1] = {}): LatchkeyClient {
  const c: LatchkeyClient = connect(url, {
    ...opts,
    onStateChange: (s) => {
      if (s === 'open') opens.set(c, (opens.get(c) ?? 0) + 1);
    },
  });
  return c;
}

/** Cuts every connection of the proxy and waits until the client has reconnected. */
async function cutAndReconnect(proxy: TcpProxy, c: LatchkeyClient): Promise<void> {
  const before = opens.get(c) ?? 0;
  proxy.cutAll();
  await until('the client reconnects', () => (opens.get(c) ?? 0) > before);
}

/** Drains a subscription into an array (in the background). */
function collect<T>(sub: Subscription<T>): {
  events: ProgressEvent<T>[];
  done: Promise<ProgressEvent<T>[]>;
} {
  const events: ProgressEvent<T>[] = [];
  const done = (async () => {
    for await (const ev of sub) events.push(ev);
    return events;
  })();
  done.catch(() => undefined);
  return { events, done };
}

const journalNames = (events: ProgressEvent[]): string[] =>
  events.flatMap((e) =>
    e.kind === 'journal' ? [`${e.entry.k}${e.entry.n !== undefined ? `:${e.entry.n}` : ''}`] : [],
  );

/** The journal of an invocation, read from the store. */
async function journalOf(server: LatchkeyServer, invocationId: string): Promise<string[]> {
  const info = await server.store.describe(invocationId, true);
  return (info?.journal ?? []).map(
    (e) => `${e.k}${'n' in e && e.n !== undefined ? `:${e.n}` : ''}`,
  );
}

describe('@latchkey/client over the WebSocket ingress', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let wsUrl: string;
  const clients: LatchkeyClient[] = [];
  const open = (opts: Parameters<typeof connect>[1] = {}): LatchkeyClient => {
    const c = connect(wsUrl, { reconnect: RECONNECT, ...opts });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, wsServices);
    wsUrl = `${server.url.replace('http', 'ws')}/ws`;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  afterAll(async () => {
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('makes typed calls to services, objects and workflow handlers, with their errors', async () => {
    const c = open();
    await c.ready();
    expect(c.state).toBe('open');
    const greeting: string = await c.serviceClient(greeter).greet('Ada');
    expect(greeting).toBe('Hello, Ada!');

    const key = `k-${Date.now()}`;
    const cnt = c.objectClient(counter, key);
    expect(await cnt.add(1)).toBe(1);
    expect(await cnt.add(2)).toBe(3);
    // By name, with the type given explicitly.
    const n: number = await c.objectClient<typeof counter>({ name: 'counter' }, key).get();
    expect(n).toBe(3);
    // An idempotency key dedupes: the second call answers the first one's result.
    expect(await cnt.add(10, { idempotencyKey: 'once' })).toBe(13);
    expect(await cnt.add(10, { idempotencyKey: 'once' })).toBe(13);
    expect(await cnt.get()).toBe(13);

    const headers = await c
      .serviceClient(greeter)
      .headers(undefined, { headers: { 'x-who': 'client' } });
    expect(headers).toMatchObject({ 'x-who': 'client' });

    const failed = await callError(c.serviceClient(greeter).fail('no way'));
    expect(failed).toMatchObject({
      status: 418,
      code: 'TERMINAL',
      message: 'no way',
      name: 'CallError',
    });
    expect(failed.invocationId).toMatch(/^inv_/);

    const missing = await callError(
      c.serviceClient<typeof greeter>({ name: 'nope' as 'greeter' }).greet('x'),
    );
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });

    const bad = await callError(c.call({ service: 'counter', handler: 'add', input: 1 }));
    expect(bad).toMatchObject({ status: 400, code: 'INVALID_KEY' });

    expect(await c.call({ service: 'greeter', handler: 'greet', input: 'generic' })).toBe(
      'Hello, generic!',
    );

    // Types are inferred from the definitions (checked by tsc; the closure never runs).
    const typeChecks = (): unknown[] => {
      expectTypeOf(c.serviceClient(greeter).greet).parameter(0).toEqualTypeOf<string>();
      expectTypeOf(c.serviceClient(greeter).slow).returns.toEqualTypeOf<Promise<number>>();
      expectTypeOf(c.objectClient(counter, 'k').get).returns.toEqualTypeOf<Promise<number>>();
      expectTypeOf(c.workflowAttach(job, 'k')).toEqualTypeOf<Promise<string>>();
      expectTypeOf(c.workflowOutput(job, 'k')).toEqualTypeOf<
        Promise<{ ready: false } | { ready: true; result: string }>
      >();
      expectTypeOf(c.serviceSendClient(greeter).greet).returns.toEqualTypeOf<Promise<SendResult>>();
      expectTypeOf(c.serviceClient({ name: 'untyped' }).anything).returns.toEqualTypeOf<
        Promise<unknown>
      >();
      return [
        // @ts-expect-error greet takes a string
        c.serviceClient(greeter).greet(42),
        // @ts-expect-error add needs its input
        c.objectClient(counter, 'k').add(),
        // @ts-expect-error no such handler
        c.serviceClient(greeter).nope('x'),
        // @ts-expect-error the workflow's run takes a string
        c.workflowSubmit(job, 'k', { not: 'a string' }),
        // @ts-expect-error a service is not a workflow
        c.workflowClient(greeter, 'k'),
      ];
    };
    expect(typeof typeChecks).toBe('function');
  });

  it('sends one-way requests (delayed, idempotent) and attaches to them by invocation id', async () => {
    const c = open();
    const sentAt = Date.now();
    const { invocationId, status } = await c.serviceSendClient(greeter).greet('Bo', { delay: 400 });
    expect(status).toBe('Accepted');
    expect(invocationId).toMatch(/^inv_/);
    expect(await c.attach<string>(invocationId)).toBe('Hello, Bo!');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(400);
    expect(await c.output({ invocationId })).toEqual({ ready: true, result: 'Hello, Bo!' });

    const key = `s-${Date.now()}`;
    const first = await c.objectSendClient(counter, key).add(5, { idempotencyKey: 'add-5' });
    const again = await c.objectSendClient(counter, key).add(5, { idempotencyKey: 'add-5' });
    expect(again).toEqual({ invocationId: first.invocationId, status: 'PreviouslyAccepted' });
    expect(await c.attach({ service: counter, key, handler: 'add', idempotencyKey: 'add-5' })).toBe(
      5,
    );
    expect(await c.objectClient(counter, key).get()).toBe(5);

    const generic = await c.send({ service: 'greeter', handler: 'greet', input: 'Cy' });
    expect(await c.attach(generic.invocationId)).toBe('Hello, Cy!');
  });

  it('submits a workflow once, then attaches to it and reads its output', async () => {
    const c = open();
    const key = `w-${Date.now()}`;
    expect(await callError(c.workflowOutput(job, key))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });

    const sub = await c.workflowSubmit(job, key, 'x');
    expect(sub.status).toBe('Accepted');
    const dup = await c.workflowSubmit(job, key, 'other');
    expect(dup).toEqual({ invocationId: sub.invocationId, status: 'PreviouslyAccepted' });
    expect(await c.workflowOutput(job, key)).toEqual({ ready: false });

    const attached = c.workflowAttach(job, key);
    expect(await c.workflowClient(job, key).release('go!')).toBe('released');
    const result: string = await attached;
    expect(result).toBe('A:x|go!|B');
    expect(await c.workflowOutput(job, key)).toEqual({ ready: true, result: 'A:x|go!|B' });
    expect(await c.attach({ workflow: 'job', key })).toBe('A:x|go!|B');
    // A second run of the same workflow id is refused.
    expect(await callError(c.workflowClient(job, key).run('again'))).toMatchObject({
      status: 409,
      code: 'WORKFLOW_ALREADY_INVOKED',
    });

    // The workflow client's `run` starts and waits in one call.
    const key2 = `${key}-2`;
    const run = c.workflowClient(job, key2).run('y');
    await until(
      'workflow 2 waits for its promise',
      async () => (await c.workflowOutput(job, key2).catch(() => undefined))?.ready === false,
    );
    await c.workflowClient(job, key2).release('ok');
    expect(await run).toBe('A:y|ok|B');
  });

  it('subscribe yields status and journal events, then the result', async () => {
    const c = open();
    const key = `sub-${Date.now()}`;
    const { invocationId } = await c.workflowSubmit(job, key, 'p');
    const sub = c.subscribe<string>({ workflow: job, key });
    const { events, done } = collect(sub);
    await until('the workflow waits for its promise', () =>
      journalNames(events).includes('pget:go'),
    );
    expect(sub.invocationId).toBe(invocationId);
    await c.workflowClient(job, key).release('now');
    const all = await done;

    const last = all[all.length - 1]!;
    expect(last).toEqual({ kind: 'result', invocationId, ok: true, value: 'A:p|now|B' });
    expect(all.filter((e) => e.kind === 'result')).toHaveLength(1);
    // Every journal entry once, in order, from index 0.
    const journal = all.filter((e) => e.kind === 'journal');
    expect(journal.map((e) => e.index)).toEqual(journal.map((_, i) => i));
    expect(journalNames(all)).toEqual(await journalOf(server, invocationId));
    expect(journalNames(all)).toEqual(
      expect.arrayContaining(['run:a', 'sleep', 'pget:go', 'run:b']),
    );
    const names = journalNames(all);
    expect(names.indexOf('run:a')).toBeLessThan(names.indexOf('pget:go'));
    expect(names.indexOf('pget:go')).toBeLessThan(names.indexOf('run:b'));
    // Status transitions: no repeats, the last one before the result is `completed`.
    const statuses = all.flatMap((e) => (e.kind === 'status' ? [e.status] : []));
    expect(statuses.length).toBeGreaterThanOrEqual(2);
    expect(statuses[statuses.length - 1]).toBe('completed');
    for (let i = 1; i < statuses.length; i++) expect(statuses[i]).not.toBe(statuses[i - 1]);
    expect(all.findIndex((e) => e.kind === 'status' && e.status === 'completed')).toBeLessThan(
      all.length - 1,
    );

    // A failing invocation ends its subscription with the failure as the last item.
    const failing = await c.serviceSendClient(greeter).fail('bad');
    const failEvents = await collect(c.subscribe(failing.invocationId)).done;
    const end = failEvents[failEvents.length - 1]!;
    expect(end.kind === 'result' && !end.ok && end.error).toMatchObject({
      status: 418,
      code: 'TERMINAL',
      message: 'bad',
    });

    // Leaving early ends the iterator; subscribing to nothing fails.
    const key2 = `${key}-2`;
    await c.workflowSubmit(job, key2, 'q');
    const early = c.subscribe({ workflow: 'job', key: key2 });
    for await (const ev of early) {
      expect(ev.kind).not.toBe('result');
      break;
    }
    expect(await early.next()).toEqual({ value: undefined, done: true });
    await c.workflowClient(job, key2).release('x');
    const none = c.subscribe({ workflow: 'job', key: `${key}-missing` });
    expect(await callError(none.next())).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('timeouts and abort signals reject with CallError TIMEOUT / ABORTED; the invocation keeps running', async () => {
    const c = open();
    await c.ready();
    const t0 = Date.now();
    const timedOut = await callError(
      c.serviceClient(greeter).slow(800, { timeout: 150, idempotencyKey: 'slow-1' }),
    );
    expect(timedOut).toMatchObject({ status: 408, code: 'TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    // It only stopped waiting: the invocation completes and can be attached to.
    await until('the slow call was accepted', () =>
      server.store.lookup({ service: 'greeter', handler: 'slow', idempotencyKey: 'slow-1' }),
    );
    expect(await c.attach({ service: 'greeter', handler: 'slow', idempotencyKey: 'slow-1' })).toBe(
      800,
    );

    const ac = new AbortController();
    const reason = new Error('user left');
    const pending = c.serviceClient(greeter).slow(5000, { signal: ac.signal });
    setTimeout(() => ac.abort(reason), 100);
    const aborted = await callError(pending);
    expect(aborted).toMatchObject({ status: 499, code: 'ABORTED' });
    expect(aborted.cause).toBe(reason);

    // An already aborted signal: nothing is sent, so nothing starts.
    const gone = new AbortController();
    gone.abort();
    expect(
      await callError(
        c
          .serviceSendClient(greeter)
          .greet('never', { signal: gone.signal, idempotencyKey: 'never-sent' }),
      ),
    ).toMatchObject({ code: 'ABORTED' });
    expect(
      await callError(
        c.attach({ service: 'greeter', handler: 'greet', idempotencyKey: 'never-sent' }),
      ),
    ).toMatchObject({ status: 404 });

    // Subscriptions and attaches time out too; a client-wide default applies to requests without their own.
    const key = `t-${Date.now()}`;
    await c.workflowSubmit(job, key, 't');
    const subT = c.subscribe({ workflow: job, key }, { timeout: 150 });
    const subErr = await callError(
      (async () => {
        for await (const _ of subT) {
          // status and journal events until the timeout
        }
      })(),
    );
    expect(subErr).toMatchObject({ status: 408, code: 'TIMEOUT' });
    const d = open({ timeout: 120 });
    expect(await callError(d.workflowAttach(job, key))).toMatchObject({
      status: 408,
      code: 'TIMEOUT',
    });
    expect(await d.serviceClient(greeter).greet('quick', { timeout: 30_000 })).toBe(
      'Hello, quick!',
    );
    await c.workflowClient(job, key).release('t');
  });

  it('resolves and rejects awakeables and cancels invocations', async () => {
    const c = open();
    const k1 = `a-${Date.now()}`;
    await c.workflowSubmit(waiter, k1);
    const id1 = await until('the awakeable id', () => awakeableIds.get(k1));
    await c.resolveAwakeable(id1, 'yes');
    expect(await c.workflowAttach(waiter, k1)).toBe('got:yes');
    expect(await callError(c.resolveAwakeable(id1, 'twice'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });

    const k2 = `${k1}-r`;
    await c.workflowSubmit(waiter, k2);
    const id2 = await until('the awakeable id', () => awakeableIds.get(k2));
    await c.rejectAwakeable(id2, 'nope');
    expect(await callError(c.workflowAttach(waiter, k2))).toMatchObject({
      status: 500,
      message: 'nope',
    });

    const k3 = `${k1}-c`;
    const { invocationId } = await c.workflowSubmit(job, k3, 'c');
    const waiting = c.workflowAttach(job, k3);
    await until('the workflow waits', async () =>
      (await journalOf(server, invocationId)).includes('pget:go'),
    );
    await c.cancel(invocationId);
    expect(await callError(waiting)).toMatchObject({ status: 409, invocationId });
    expect(await callError(c.cancel(invocationId))).toMatchObject({ status: 404 });
  });

  it('close() fails open requests with CLIENT_CLOSED', async () => {
    const c = open();
    const key = `cl-${Date.now()}`;
    await c.workflowSubmit(job, key, 'z');
    const waiting = c.workflowAttach(job, key);
    const sub = c.subscribe({ workflow: job, key });
    await c.close();
    expect(c.state).toBe('closed');
    expect(await callError(waiting)).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(await callError(sub.next())).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(await callError(c.serviceClient(greeter).greet('late'))).toMatchObject({
      code: 'CLIENT_CLOSED',
    });
    await post(server.url, `/job/${key}/release`, 'z');
  });
});

describe('@latchkey/client reconnection', () => {
  const prefix = newPrefix();
  let workers: LatchkeyServer;
  let ingress: LatchkeyServer | undefined;
  let port = 0;
  const clients: LatchkeyClient[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    workers = await startServer(redisTarget, prefix, wsServices);
    ingress = await startIngress(redisTarget, prefix, wsServices);
    port = ingress.port;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const p of proxies.splice(0)) await p.close();
    if (!ingress) ingress = await startIngress(redisTarget, prefix, wsServices, port);
  });
  afterAll(async () => {
    await ingress?.close();
    await workers.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('a client whose socket is cut mid-workflow (ingress restarted) still receives the results', async () => {
    const states: ConnectionState[] = [];
    const c = connect(`ws://127.0.0.1:${port}/ws`, {
      reconnect: RECONNECT,
      onStateChange: (s) => states.push(s),
    });
    clients.push(c);
    const kDown = `down-${Date.now()}`;
    const kAfter = `after-${Date.now()}`;
    // Workflow 1 completes while the socket is down; workflow 2 after the reconnection.
    const { invocationId: id1 } = await c.workflowSubmit(job, kDown, 'one');
    const attached1 = c.workflowAttach(job, kDown);
    const sub1 = collect(c.subscribe<string>(id1));
    const run2 = c.workflowClient(job, kAfter).run('two'); // a call: accepted, then waiting
    const sub2 = collect(c.subscribe<string>({ workflow: job, key: kAfter }));
    await until(
      'both workflows wait for their promise',
      () =>
        journalNames(sub1.events).includes('pget:go') &&
        journalNames(sub2.events).includes('pget:go'),
    );
    const id2 = (await workers.store.lookup({ workflow: 'job', key: kAfter }))!;

    // Server-side close: the ingress goes away with every socket.
    await ingress!.close();
    ingress = undefined;
    await until('the client notices', () => c.state !== 'open');
    // Meanwhile workflow 1 completes, and a call is queued.
    expect((await post(workers.url, `/job/${kDown}/release`, 'while-down')).status).toBe(200);
    await until('workflow 1 completes', async () => (await workers.store.describe(id1))?.outcome);
    const queued = c.serviceClient(greeter).greet('queued');

    ingress = await startIngress(redisTarget, prefix, wsServices, port);
    await within(c.ready(), 'the reconnection');
    expect(await within(attached1, 'the result that completed while the socket was down')).toBe(
      'A:one|while-down|B',
    );
    expect(await within(queued, 'the queued call')).toBe('Hello, queued!');
    const events1 = await within(sub1.done, 'subscription 1');
    expect(events1[events1.length - 1]).toEqual({
      kind: 'result',
      invocationId: id1,
      ok: true,
      value: 'A:one|while-down|B',
    });

    // Workflow 2 completes after the reconnection.
    await c.workflowClient(job, kAfter).release('after');
    expect(await within(run2, 'the re-attached call')).toBe('A:two|after|B');
    const events2 = await within(sub2.done, 'subscription 2');
    expect(events2[events2.length - 1]).toEqual({
      kind: 'result',
      invocationId: id2,
      ok: true,
      value: 'A:two|after|B',
    });
    // The re-subscriptions yield every journal entry exactly once, in order.
    for (const [events, id] of [
      [events1, id1],
      [events2, id2],
    ] as const) {
      expect(journalNames(events)).toEqual(await journalOf(workers, id));
      const idx = events.flatMap((e) => (e.kind === 'journal' ? [e.index] : []));
      expect(idx).toEqual(idx.map((_, i) => i));
    }
    expect(states.filter((s) => s === 'open').length).toBeGreaterThanOrEqual(2);
    expect(states).toContain('reconnecting');
  });

  it('re-sends a call whose accepted answer was lost, without running it twice (generated idempotency key)', async () => {
    const proxy = await startTcpProxy(port);
    proxies.push(proxy);
    const c = connectCounting(`ws://127.0.0.1:${proxy.port}/ws`, { reconnect: RECONNECT });
    clients.push(c);
    await c.ready();
    const key = `amb-${Date.now()}`;
    // The server receives the call and runs it, but its answers never reach the client.
    proxy.blackhole('down');
    const added = c.objectClient(counter, key).add(1);
    await until(
      'the add ran',
      async () => (await workers.store.getState('counter', key)).get('v') === '1',
    );
    proxy.cutAll();
    expect(await within(added, 'the re-sent call')).toBe(1);
    expect(await c.objectClient(counter, key).get()).toBe(1);

    // Same for a workflow run (no generated key): re-sent as submit + attach instead of failing with 409.
    const wkey = `${key}-wf`;
    proxy.blackhole('down');
    const run = c.workflowClient(job, wkey).run('amb');
    await until(
      'the workflow started',
      async () => (await workers.store.lookup({ workflow: 'job', key: wkey })) !== undefined,
    );
    await cutAndReconnect(proxy, c);
    await c.workflowClient(job, wkey).release('r');
    expect(await within(run, 'the re-sent workflow run')).toBe('A:amb|r|B');

    // A request that never reached the server is simply sent again.
    proxy.blackhole('up');
    const lost = c.objectClient(counter, key).add(2);
    proxy.cutAll();
    expect(await within(lost, 'the call lost on the way up')).toBe(3);
    expect(await c.objectClient(counter, key).get()).toBe(3);
  });

  it('a re-subscription yields the journal entries appended while the socket was down, while other sockets watch the same invocation', async () => {
    const proxy = await startTcpProxy(port);
    proxies.push(proxy);
    // `a` keeps a subscription on the same ingress the whole time; `b` goes through the proxy and loses its socket.
    const a = connect(`ws://127.0.0.1:${port}/ws`, { reconnect: RECONNECT });
    const b = connectCounting(`ws://127.0.0.1:${proxy.port}/ws`, { reconnect: RECONNECT });
    clients.push(a, b);
    const key = `gap-${Date.now()}`;
    const { invocationId } = await a.workflowSubmit(twoGates, key);
    const subB = collect(b.subscribe(invocationId));
    await until('b sees the first gate', () => journalNames(subB.events).includes('pget:one'));
    const subA = collect(a.subscribe(invocationId));
    await until('a is subscribed', () => subA.events.length > 0);

    // b is offline while the workflow passes gate one and reaches gate two.
    const opened = opens.get(b) ?? 0;
    proxy.refuse(true);
    proxy.cutAll();
    await until('b notices', () => b.state !== 'open');
    await a.workflowClient(twoGates, key).open('one');
    await until('the workflow waits at gate two', async () =>
      (await journalOf(workers, invocationId)).includes('pget:two'),
    );
    await until('a saw it', () => journalNames(subA.events).includes('pget:two'));
    proxy.refuse(false);
    await until('b reconnects', () => (opens.get(b) ?? 0) > opened);
    await a.workflowClient(twoGates, key).open('two');

    const eventsA = await within(subA.done, 'subscription a');
    const eventsB = await within(subB.done, 'subscription b');
    const journal = await journalOf(workers, invocationId);
    expect(eventsA[eventsA.length - 1]).toMatchObject({ kind: 'result', ok: true, value: 'done' });
    expect(eventsB[eventsB.length - 1]).toMatchObject({ kind: 'result', ok: true, value: 'done' });
    // b's stream has no gap: every entry once, in order, including those appended while it was offline.
    expect(journalNames(eventsB)).toEqual(journal);
  });

  it('without idempotency keys an ambiguous call fails with AMBIGUOUS; without reconnection with DISCONNECTED', async () => {
    const proxy = await startTcpProxy(port);
    proxies.push(proxy);
    const c = connectCounting(`ws://127.0.0.1:${proxy.port}/ws`, {
      reconnect: RECONNECT,
      idempotencyKeys: false,
    });
    clients.push(c);
    await c.ready();
    const key = `noidem-${Date.now()}`;
    proxy.blackhole('down');
    const added = c.objectClient(counter, key).add(1);
    await until(
      'the add ran',
      async () => (await workers.store.getState('counter', key)).get('v') === '1',
    );
    proxy.cutAll();
    expect(await callError(within(added, 'the ambiguous call'))).toMatchObject({
      status: 503,
      code: 'AMBIGUOUS',
    });
    // Accepted calls are not ambiguous: they are re-attached.
    const { invocationId } = await c.workflowSubmit(job, key, 'n');
    const attached = c.attach(invocationId);
    await until('the workflow waits', async () =>
      (await journalOf(workers, invocationId)).includes('pget:go'),
    );
    await cutAndReconnect(proxy, c);
    await c.workflowClient(job, key).release('n');
    expect(await within(attached, 'the re-attached attach')).toBe('A:n|n|B');

    const d = connect(`ws://127.0.0.1:${proxy.port}/ws`, { reconnect: false });
    clients.push(d);
    await d.ready();
    const waiting = d.serviceClient(greeter).slow(20_000, { idempotencyKey: `${key}-slow` });
    await until(
      'the slow call is accepted',
      async () =>
        (await workers.store.lookup({
          service: 'greeter',
          handler: 'slow',
          idempotencyKey: `${key}-slow`,
        })) !== undefined,
    );
    proxy.cutAll();
    expect(await callError(within(waiting, 'the failure'))).toMatchObject({
      status: 503,
      code: 'DISCONNECTED',
    });
    expect(d.state).toBe('closed');
  });
});
