/**
 * Eager completion (ARCHITECTURE.md "Eager completion"), on the real Redis: a handler that only
 * reads and writes state, on a key whose state this process committed last, is accepted and
 * completed by one accept script, checked against the key's fence; everything else takes the
 * ordinary path, and the results are the same either way:
 * - one script per invocation once the key's state is known (services need none);
 * - two processes alternating on one key: each one's copy of the state goes stale, counts stay exact;
 * - an admin state patch between two calls is seen by the second;
 * - a handler that reaches a step stops before it: the step runs once, after the accept;
 * - ctx.console lines are written once, also for a handler whose eager run stopped short;
 * - a send whose handler waits outside the journal is answered at once;
 * - calls sent on one WebSocket are accepted in the order sent;
 * - a process killed between an eager run and its accept script accepted nothing.
 */
import type { Socket as NetSocket } from 'node:net';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  handlers,
  object,
  serve,
  service,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { createHash } from 'node:crypto';
import { Keys, createRedisStore, partitionOfId, scriptSources } from '@latchkey/redis-store';
import { connect, type LatchkeyClient } from '@latchkey/client';
import { services as eagerServices } from './fixtures/eager-services.mjs';
import { startMonitor, type Monitor } from './helpers/monitor.js';
import {
  deletePrefix,
  FAST_TIMINGS,
  newPrefix,
  post,
  quietLogger,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './helpers/harness.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');

/** Runs of the `effect` step, with whether the invocation existed in Redis (accepted) as it ran. */
const effects: { id: string; accepted: boolean }[] = [];
let probe: RawRedis | undefined;
let probePrefix = '';

/** Opens the gate `waitGate` handlers wait behind. */
let openGate: () => void = () => undefined;
let gate = new Promise<void>((r) => (openGate = r));

const box = object({
  name: 'box',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const next = ((await ctx.get<number>('n')) ?? 0) + n;
      ctx.set('n', next);
      return next;
    },
    append: async (ctx: ObjectContext, item: string) => {
      const items = [...((await ctx.get<string[]>('items')) ?? []), item];
      ctx.set('items', items);
      return items.length;
    },
    // Writes state, then reaches a step: its eager run stops before the step runs.
    addThenStep: async (ctx: ObjectContext, n: number) => {
      const next = ((await ctx.get<number>('n')) ?? 0) + n;
      ctx.set('n', next);
      const id = ctx.request().id;
      await ctx.run('effect', async () => {
        const st = await probe!.hget(new Keys(probePrefix).inv(partitionOfId(id, 16)!, id), 'st');
        effects.push({ id, accepted: st !== null });
      });
      return next;
    },
    note: async (ctx: ObjectContext, text: string) => {
      ctx.console.log(`note ${text}`);
      ctx.set('note', text);
    },
    noteThenStep: async (ctx: ObjectContext, text: string) => {
      ctx.console.log(`note ${text}`);
      await ctx.run('step', () => text);
    },
    // Waits for something outside the journal: its eager run does not finish within the turn.
    waitGate: async (ctx: ObjectContext) => {
      await gate;
      ctx.set('gated', true);
      return 'opened';
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('n')) ?? 0,
    ),
    items: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<string[]>('items')) ?? [],
    ),
  },
});

const echo = service({
  name: 'echo',
  handlers: { say: async (_ctx: Context, text: string) => `said ${text}` },
});

/** Top-level script calls whose first ARGV is the invocation id. */
function scriptsFor(mon: Monitor, id: string): string[] {
  const names = new Map<string, string>();
  for (const [name, lua] of scriptSources())
    names.set(lua, name).set(createHash('sha1').update(lua).digest('hex'), name);
  return mon.commands
    .filter((c) => c.source !== 'lua' && ['eval', 'evalsha'].includes(c.args[0]!.toLowerCase()))
    .map((c) => c.args)
    .filter((a) => a[3 + Number(a[2])] === id)
    .map((a) => names.get(a[1]!) ?? a[1]!);
}

describe('eager completion', () => {
  const prefix = newPrefix();
  const servers: LatchkeyServer[] = [];
  const monitors: Monitor[] = [];
  const clients: LatchkeyClient[] = [];
  const sockets: WebSocket[] = [];
  const workers: WorkerProcess[] = [];
  const redis = rawClient(redisTarget);
  probe = redis;
  probePrefix = prefix;

  afterEach(async () => {
    for (const c of clients) await c.close();
    clients.length = 0;
    for (const ws of sockets) ws.close();
    sockets.length = 0;
    for (const w of workers) await w.kill('SIGKILL');
    workers.length = 0;
    for (const s of servers) await s.close();
    servers.length = 0;
    for (const m of monitors) m.close();
    monitors.length = 0;
  });
  afterAll(async () => {
    await deletePrefix(redisTarget, prefix);
    redis.disconnect();
  });

  async function server(): Promise<LatchkeyServer> {
    const s = await startServer(redisTarget, prefix, [box, echo]);
    servers.push(s);
    return s;
  }

  /** True when the invocation completed without an attempt leased to a worker (eagerly). */
  async function completedEagerly(id: string): Promise<boolean> {
    const [st, w] = await redis.hmget(new Keys(prefix).inv(partitionOfId(id, 16)!, id), 'st', 'w');
    return st === 'completed' && w === null;
  }

  it("accepts and completes a state-only handler in one script once the process knows the key's state", async () => {
    const s = await server();
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    // The first call on a key runs the ordinary way: this process does not know its state yet.
    const first = await post(s.url, '/box/k1/add', 1);
    expect(first.body).toBe(1);
    const id1 = first.headers.get('x-restate-id')!;
    const second = await post(s.url, '/box/k1/add', 2);
    expect(second.body).toBe(3);
    const id2 = second.headers.get('x-restate-id')!;
    await mon.caughtUp();
    expect(scriptsFor(mon, id1)).toEqual(['acceptInvocation', 'completeInvocation']); // accept (leased), complete
    expect(scriptsFor(mon, id2)).toEqual(['acceptInvocation']); // accept, completed inside it
    expect(await s.store.describe(id2, true)).toMatchObject({
      status: 'completed',
      attempts: 0,
      outcome: { ok: true, value: '3' },
      journal: [
        { k: 'get', n: 'n', v: 1 },
        { k: 'set', n: 'n', v: 3 },
      ],
    });
    expect((await s.store.getState('box', 'k1')).get('n')).toBe('3');
    // A service handler has no state to know: one script from the first call on.
    const said = await post(s.url, '/echo/say', 'hi');
    expect(said.body).toBe('said hi');
    await mon.caughtUp();
    expect(scriptsFor(mon, said.headers.get('x-restate-id')!)).toEqual(['acceptInvocation']);
  });

  it('counts exactly when two processes take turns on one key and their copies of its state go stale', async () => {
    const a = await server();
    const b = await server();
    const ids: string[] = [];
    const add = async (s: LatchkeyServer): Promise<void> => {
      const r = await post(s.url, '/box/shared/add', 1);
      expect(r.status).toBe(200);
      ids.push(r.headers.get('x-restate-id')!);
    };
    // Runs of two on each process (the second of a run can complete eagerly; the first finds
    // the other process's writes and falls back), then both at once.
    for (let i = 0; i < 10; i++) {
      const s = i % 2 === 0 ? a : b;
      await add(s);
      await add(s);
    }
    await Promise.all(Array.from({ length: 40 }, (_, i) => add(i % 2 === 0 ? a : b)));
    expect(ids).toHaveLength(60);
    expect((await a.store.getState('box', 'shared')).get('n')).toBe('60');
    const eager = (await Promise.all(ids.map(completedEagerly))).filter(Boolean).length;
    expect(eager).toBeGreaterThan(0);
    expect(eager).toBeLessThan(60);
  });

  it("sees an admin state patch made between two calls (the patch moves the key's fence)", async () => {
    const s = await server();
    expect((await post(s.url, '/box/patched/add', 1)).body).toBe(1);
    expect(await s.store.patchState('box', 'patched', { n: 100 })).toBe(true);
    expect((await post(s.url, '/box/patched/add', 1)).body).toBe(101);
  });

  it('stops a handler at its first step, before the step runs: the step runs once, after the invocation was accepted', async () => {
    const s = await server();
    expect((await post(s.url, '/box/stepped/add', 1)).body).toBe(1);
    effects.length = 0;
    const r = await post(s.url, '/box/stepped/addThenStep', 1);
    expect(r.body).toBe(2);
    const id = r.headers.get('x-restate-id')!;
    expect(effects).toEqual([{ id, accepted: true }]);
    expect((await s.store.getState('box', 'stepped')).get('n')).toBe('2');
    expect(await completedEagerly(id)).toBe(false);
  });

  it("writes a handler's ctx.console lines once, also when its eager run stopped short", async () => {
    const lines: string[] = [];
    const capture = {
      ...quietLogger,
      log: (...args: unknown[]) => void lines.push(args.join(' ')),
    } as Console;
    const store = createRedisStore({
      ...redisTarget,
      prefix,
      ...FAST_TIMINGS,
      logger: quietLogger,
    });
    const s = await serve({
      services: [box],
      store,
      port: 0,
      host: '127.0.0.1',
      handleSignals: false,
      logger: capture,
    });
    servers.push(s);
    await post(s.url, '/box/noisy/add', 1);
    const eager = await post(s.url, '/box/noisy/note', 'one');
    expect(await completedEagerly(eager.headers.get('x-restate-id')!)).toBe(true);
    const stepped = await post(s.url, '/box/noisy/noteThenStep', 'two');
    expect(stepped.status).toBe(200);
    expect(await completedEagerly(stepped.headers.get('x-restate-id')!)).toBe(false);
    expect(lines.filter((l) => l.endsWith('note one'))).toHaveLength(1);
    expect(lines.filter((l) => l.endsWith('note two'))).toHaveLength(1);
  });

  it('answers a send at once when its handler waits for something outside the journal', async () => {
    const s = await server();
    await post(s.url, '/box/gated/add', 1);
    gate = new Promise<void>((r) => (openGate = r));
    // The gate stays shut until the send is answered: the answer cannot wait for the handler.
    const r = await post(s.url, '/box/gated/waitGate/send');
    expect(r.status).toBe(202);
    const id = (r.body as { invocationId: string }).invocationId;
    expect((await s.store.describe(id))?.status).toBe('running');
    openGate();
    const outcome = await s.store.awaitOutcome(id);
    expect(outcome).toEqual({ ok: true, value: '"opened"' });
    expect((await s.store.getState('box', 'gated')).get('gated')).toBe('true');
  });

  it('accepts calls sent on one WebSocket in the order they were sent', async () => {
    const s = await server();
    const c = connect(`ws://127.0.0.1:${s.port}/ws`);
    clients.push(c);
    await c.ready();
    expect(await c.objectClient(box, 'ordered').append('init')).toBe(1);
    // 30 call frames in one TCP write (the socket corked around them), so the ingress reads and
    // handles them in one go: the first may run eagerly, the others must still come after it.
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`);
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const results = new Map<string, unknown>();
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { id: string; type: string; value?: unknown };
      if (f.type === 'result') results.set(f.id, f.value);
    });
    const tcp = (ws as unknown as { _socket: NetSocket })._socket;
    tcp.cork();
    for (let i = 0; i < 30; i++)
      ws.send(
        JSON.stringify({
          id: `c${i}`,
          type: 'call',
          service: 'box',
          handler: 'append',
          key: 'ordered',
          input: String(i),
        }),
      );
    tcp.uncork();
    await until('every result', () => results.size === 30);
    expect(Array.from({ length: 30 }, (_, i) => results.get(`c${i}`))).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
    expect(await c.objectClient(box, 'ordered').items()).toEqual([
      'init',
      ...Array.from({ length: 30 }, (_, i) => String(i)),
    ]);
  });

  it('accepts nothing when the process dies between an eager run and its accept script', async () => {
    const store = { eagerCompletion: true };
    const env = { LK_SERVICES: 'eager-services.mjs' };
    const doomed = await spawnWorker(redisTarget, prefix, {
      env,
      ingress: true,
      store,
      fault: 'before-eager-accept:add',
    });
    workers.push(doomed);
    const base = `http://127.0.0.1:${doomed.port}`;
    // The first add runs the ordinary way (the process does not know the key yet); the second
    // runs eagerly and the process SIGKILLs itself before sending its accept script.
    expect((await post(base, '/tally/crashed/add', 1)).body).toBe(1);
    const headers = { 'idempotency-key': 'eager-crash' };
    await expect(post(base, '/tally/crashed/add', 1, headers)).rejects.toThrow();
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(doomed.output.some((l) => l.includes('FAULT before-eager-accept:add'))).toBe(true);

    const s = await startServer(redisTarget, prefix, eagerServices);
    servers.push(s);
    expect(
      await s.store.lookup({
        service: 'tally',
        handler: 'add',
        key: 'crashed',
        idempotencyKey: 'eager-crash',
      }),
    ).toBeUndefined();
    expect((await s.store.getState('tally', 'crashed')).get('n')).toBe('1');
    // The client's retry is accepted and applied once.
    expect((await post(s.url, '/tally/crashed/add', 1, headers)).body).toBe(2);
    expect((await post(s.url, '/tally/crashed/add', 1, headers)).body).toBe(2);
    await until(
      'the count',
      async () => (await s.store.getState('tally', 'crashed')).get('n') === '2',
    );
  });
});
