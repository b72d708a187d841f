/**
 * The fast paths of one `serve()` process (ARCHITECTURE.md "Local fast path", "Write coalescing",
 * "Result delivery"), observed on the real Redis:
 * - a fresh call is leased to the accepting process by its accept script: two scripts per call;
 * - outcomes are published only to the processes watching them: nothing for a send or for a call
 *   run where it was accepted, one message to the ingress's channel for a call run elsewhere;
 * - a worker killed right after an accept leased to it loses that attempt, not the invocation;
 * - the commands of one event-loop turn are held in the socket and leave together, in order.
 */
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { object, type LatchkeyServer, type ObjectContext } from '@latchkey/core';
import { createHash } from 'node:crypto';
import { createRedisStore, scriptSources, type RedisStore } from '@latchkey/redis-store';
import { greeter } from '../examples/quickstart/src/services.js';
import { services } from './fixtures/crash-services.mjs';
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
import { connectionFor, keysOnMasters, rawClient, type RawRedis } from './helpers/redis.js';

/**
 * The scripts the always-suspend test mode adds after a committed step: the suspension and the
 * attempt that replays it.
 */
const AFTER_STEP =
  process.env['LATCHKEY_INACTIVITY_TIMEOUT'] === '0' ? ['suspendInvocation', 'startAttempt'] : [];

/** Script names by the SHA1 (EVALSHA) or the source (EVAL) a call carries. */
const SCRIPT_NAMES = new Map<string, string>();
for (const [name, lua] of scriptSources()) {
  SCRIPT_NAMES.set(lua, name).set(createHash('sha1').update(lua).digest('hex'), name);
}
const scriptName = (a: string[]): string => SCRIPT_NAMES.get(a[1]!) ?? a[1]!;

const redisTarget = inject('redisTarget');
const ENV = { LK_SERVICES: 'crash-services.mjs' };

/** An object whose `add` holds its key for a while (a journaled 300 ms step), so a second add queues. */
const slowCounter = object({
  name: 'slowCounter',
  handlers: {
    add: async (ctx: ObjectContext, delta: number) => {
      await ctx.run(
        'hold',
        () => new Promise<number>((resolve) => setTimeout(() => resolve(1), 300)),
      );
      const next = ((await ctx.get<number>('count')) ?? 0) + delta;
      ctx.set('count', next);
      return next;
    },
  },
});

/** Top-level script calls (EVAL on a connection's first use of a script, EVALSHA after). */
function scripts(mon: Monitor): string[][] {
  return mon.commands
    .filter((c) => c.source !== 'lua' && ['eval', 'evalsha'].includes(c.args[0]!.toLowerCase()))
    .map((c) => c.args);
}

/** The script calls whose first ARGV is the invocation id (the scripts that work on it). */
function scriptsFor(mon: Monitor, id: string): string[][] {
  return scripts(mon).filter((a) => a[3 + Number(a[2])] === id);
}

/** Outcome publishes (`<prefix>:{<p>}:done:<process>` channels) that name the invocation. */
function outcomePublishes(mon: Monitor, prefix: string, id: string): string[][] {
  return mon.commands
    .map((c) => c.args)
    .filter(
      (a) =>
        a[0]!.toLowerCase() === 'spublish' &&
        String(a[1]).startsWith(`${prefix}:{`) &&
        String(a[1]).includes('}:done:') &&
        String(a[2]).startsWith(`${id}\n`),
    );
}

describe('the fast paths of one process', () => {
  const prefix = newPrefix();
  const conns: RawRedis[] = [];
  const monitors: Monitor[] = [];
  const workers: WorkerProcess[] = [];
  let server: LatchkeyServer | undefined;

  afterEach(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    workers.length = 0;
    await server?.close();
    server = undefined;
    for (const c of conns) c.disconnect();
    conns.length = 0;
    for (const m of monitors) m.close();
    monitors.length = 0;
  });
  afterAll(async () => {
    await deletePrefix(redisTarget, prefix);
  });

  it('starts a fresh call inside its accept script and publishes no outcome', async () => {
    server = await startServer(redisTarget, prefix, [greeter]);
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    const r = await post(server.url, '/greeter/greet', { name: 'Ada' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('Hello, Ada!');
    const id = r.headers.get('x-restate-id')!;
    // The reply can overtake MONITOR's stream: wait for the completion script to show up.
    const scripts = await until('the completion script in MONITOR', () => {
      const s = scriptsFor(mon, id);
      return s.some((a) => a[3 + Number(a[2]) + 3] === 'ok') ? s : undefined;
    });
    // accept leased the invocation, then the step's commit and the completion: no startAttempt in
    // between (but the always-suspend mode's after the step).
    expect(scripts.map(scriptName)).toEqual([
      'acceptInvocation',
      'commitEntries',
      ...AFTER_STEP,
      'completeInvocation',
    ]);
    await mon.caughtUp();
    expect(outcomePublishes(mon, prefix, id)).toEqual([]);
    const info = await server.store.describe(id);
    expect(info).toMatchObject({ status: 'completed', attempts: 0 });
  });

  it('hands a key to its next queued invocation inside the completion script', async () => {
    server = await startServer(redisTarget, prefix, [slowCounter]);
    const store = server.store;
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    const first = post(server.url, '/slowCounter/hot/add', 1, { 'idempotency-key': 'first' });
    await until('the first add to run', async () => {
      const id = await store.lookup({
        service: 'slowCounter',
        handler: 'add',
        key: 'hot',
        idempotencyKey: 'first',
      });
      return id !== undefined && (await store.describe(id))?.status === 'running';
    });
    const second = await post(server.url, '/slowCounter/hot/add', 1, {
      'idempotency-key': 'second',
    });
    expect((await first).body).toBe(1);
    expect(second.body).toBe(2);
    const id = second.headers.get('x-restate-id')!;
    await mon.caughtUp();
    // The second was queued at accept (not leased), then leased by the first's completion:
    // its own scripts are the step's commit and its completion, no startAttempt.
    expect(scriptsFor(mon, id).map(scriptName)).toEqual([
      'acceptInvocation',
      'commitEntries',
      ...AFTER_STEP,
      'completeInvocation',
    ]);
    expect(await store.describe(id)).toMatchObject({ status: 'completed', attempts: 0 });
  });

  it('publishes nothing for a send, and nothing is left watching it', async () => {
    server = await startServer(redisTarget, prefix, [greeter]);
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    const r = await post(server.url, '/greeter/greet/send', { name: 'Bob' });
    expect(r.status).toBe(202);
    const id = (r.body as { invocationId: string }).invocationId;
    await until(
      'the send to complete',
      async () => (await server!.store.describe(id))?.status === 'completed',
    );
    await mon.caughtUp();
    expect(scriptsFor(mon, id).map(scriptName)).toEqual([
      'acceptInvocation',
      'commitEntries',
      ...AFTER_STEP,
      'completeInvocation',
    ]);
    expect(outcomePublishes(mon, prefix, id)).toEqual([]);
    const r2 = rawClient(redisTarget);
    conns.push(r2);
    expect(await keysOnMasters(r2, `${prefix}:{*}:ow:${id}`)).toEqual([]);
  });

  it("publishes a call's outcome once, to the ingress's own channel, when another process ran it", async () => {
    server = await startServer(redisTarget, prefix, services, { workers: false });
    workers.push(await spawnWorker(redisTarget, prefix, { env: ENV }));
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    const r = await post(server.url, '/stally/work', 'z');
    expect(r.status).toBe(200);
    expect(r.body).toBe('done:z:1');
    const id = r.headers.get('x-restate-id')!;
    await mon.caughtUp();
    const pubs = outcomePublishes(mon, prefix, id);
    expect(pubs).toHaveLength(1);
    expect(pubs[0]![2]).toBe(`${id}\nok\n"done:z:1"`);
    // The worker's completion published it; the watcher set is gone with it.
    const r2 = rawClient(redisTarget);
    conns.push(r2);
    expect(await keysOnMasters(r2, `${prefix}:{*}:ow:${id}`)).toEqual([]);
    // A second waiter attaching after completion gets the outcome from its registration.
    const again = await server.store.awaitOutcome(id);
    expect(again).toEqual({ ok: true, value: '"done:z:1"' });
    await mon.caughtUp();
    expect(outcomePublishes(mon, prefix, id)).toHaveLength(1);
  });

  it('loses only the attempt when the process dies right after its accept leased the invocation', async () => {
    // This worker has the ingress too, so its accept script leases the call to it; it SIGKILLs
    // itself as the attempt starts, before answering the client.
    const doomed = await spawnWorker(redisTarget, prefix, {
      env: ENV,
      ingress: true,
      fault: 'after-start:work',
    });
    workers.push(doomed);
    const headers = { 'idempotency-key': 'fast-path-crash' };
    await expect(
      post(`http://127.0.0.1:${doomed.port}`, '/stally/work', 'c', headers),
    ).rejects.toThrow();
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(doomed.output.some((l) => l.includes('FAULT after-start:work'))).toBe(true);

    // The invocation was accepted durably and leased: a healthy worker takes it over after the
    // lease expires, and the retried call (same idempotency key) latches on to it.
    server = await startServer(redisTarget, prefix, services, { workers: false });
    workers.push(await spawnWorker(redisTarget, prefix, { env: ENV }));
    const r = await post(server.url, '/stally/work', 'c', headers);
    expect(r.status).toBe(200);
    expect(r.body).toBe('done:c:1'); // the step ran once: the crash came before it
    const id = r.headers.get('x-restate-id')!;
    const info = await server.store.describe(id);
    expect(info?.attempts).toBe(1);
    expect(info?.lastFailure?.code).toBe('WORKER_LOST');
  });
});

describe('write coalescing', () => {
  const prefix = newPrefix();
  const stores: RedisStore[] = [];
  afterEach(async () => {
    for (const s of stores) await s.close();
    stores.length = 0;
  });
  afterAll(async () => {
    await deletePrefix(redisTarget, prefix);
  });

  async function store(coalesceWrites: boolean): Promise<RedisStore> {
    const s = createRedisStore({
      ...redisTarget,
      prefix,
      ...FAST_TIMINGS,
      coalesceWrites,
      logger: quietLogger,
    });
    stores.push(s);
    await s.init();
    return s;
  }

  it("holds one turn's commands in the socket until the turn ends, then answers them in order", async () => {
    const s = await store(true);
    const key = `${prefix}:n`;
    // On a cluster, the socket of the key's master (each master's connection coalesces).
    const conn = await connectionFor(s.redis, key);
    const replies = Array.from({ length: 50 }, () => s.redis.incr(key));
    // All 50 are buffered in the corked socket, none written yet.
    expect(conn.stream.writableCorked).toBe(1);
    expect(conn.stream.writableLength).toBeGreaterThan(50 * 'INCR'.length);
    expect(await Promise.all(replies)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(conn.stream.writableCorked).toBe(0);
    expect(conn.stream.writableLength).toBe(0);
  });

  it('writes each command at once when turned off', async () => {
    const s = await store(false);
    const key = `${prefix}:m`;
    const conn = await connectionFor(s.redis, key);
    const replies = Array.from({ length: 5 }, () => s.redis.incr(key));
    expect(conn.stream.writableCorked).toBe(0);
    expect(await Promise.all(replies)).toEqual([1, 2, 3, 4, 5]);
  });
});
