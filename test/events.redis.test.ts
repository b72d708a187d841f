/**
 * Live events (docs/ADMIN-API.md "Live updates"): the scripts publish status changes and journal
 * commits on one channel while some process listens, and nothing while nobody does;
 * `GET /events` on the admin port streams them (filters, token, a bounded number of streams, a
 * closed stream frees its listener). The WebSocket `subscribe` follows the same events instead of
 * polling: see `events-ws.redis.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  handlers,
  object,
  service,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
} from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { admin as adminCall } from './helpers/control.js';
import { startMonitor } from './helpers/monitor.js';
import { openEvents, type EventReader } from './helpers/sse.js';
import { wsServices } from './helpers/ws-services.js';
import { onEveryMaster, rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'events-token';
/** Short, so the tests see a process's interest expire once it has no listener. */
const FLAG_TTL_MS = 1500;
const PARTITIONS = 16;
/** The streams' keep-alive period here (the default is 15 s). */
const KEEP_ALIVE_MS = 400;

type Ev = Record<string, unknown>;

/** Awakeable ids of `evobj.hold` runs (workers run in this process), by invocation id. */
const held = new Map<string, string>();

/** An object whose `hold` keeps its key until its awakeable is resolved (or it is killed). */
const evobj = object({
  name: 'evobj',
  handlers: {
    hold: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      await ctx.run('publish', () => void held.set(ctx.request().id, a.id));
      return await a.promise;
    },
    add: async (_ctx: ObjectContext, n: number) => n,
  },
});

/** Always fails (retryable): backs off once, then pauses (2 attempts). */
const evflaky = service({
  name: 'evflaky',
  handlers: {
    fail: handlers.handler(
      { retryPolicy: { maxAttempts: 2, initialInterval: 50 } },
      async (ctx: Context) => {
        await ctx.run('try', () => {
          throw new Error('broken');
        });
      },
    ),
  },
});

describe('live events', () => {
  const prefix = newPrefix();
  const keys = new Keys(prefix);
  let server: LatchkeyServer;
  let admin: string;
  let redis: RawRedis;
  const readers: EventReader[] = [];
  /** Opens a stream with the token (`null`: without any). */
  const open = async (path: string, token: string | null = TOKEN): Promise<EventReader> => {
    const r = await openEvents(admin, path, token ?? undefined);
    readers.push(r);
    return r;
  };
  const ready = (r: EventReader): Promise<unknown> =>
    until('the stream is ready', () => r.comments.includes('ready'));
  /** Flags set by some listening process, over every partition. */
  const flags = async (): Promise<number> => {
    let n = 0;
    for (let p = 0; p < PARTITIONS; p++) n += await redis.exists(keys.eventsFlag(p));
    return n;
  };
  const send = async (path: string, body: unknown): Promise<string> => {
    const r = await post(server.url, path, body);
    expect(r.status).toBe(202);
    return (r.body as { invocationId: string }).invocationId;
  };
  const of = (r: EventReader, id: string): Ev[] => r.events.filter((e) => e['id'] === id);

  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, [...wsServices, evobj, evflaky], {
      store: { eventsFlagTtlMs: FLAG_TTL_MS },
      serve: {
        admin: { port: 0, token: TOKEN, maxEventStreams: 2, eventKeepAliveMs: KEEP_ALIVE_MS },
      },
    });
    admin = server.adminUrl!;
    redis = rawClient(redisTarget);
  });
  afterAll(async () => {
    for (const r of readers) r.close();
    await server.close();
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });

  it('GET /events streams each status change and journal commit of a workflow as it happens', async () => {
    const r = await open('/events');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    await ready(r);
    const key = `gates-${Date.now()}`;
    const id = await send(`/twoGates/${key}/run/send`, null);
    // Step `a` is committed, then the run waits for gate `one`.
    await until('the first step committed', () =>
      of(r, id).some((e) => e['type'] === 'journal' && Number(e['length']) >= 2),
    );
    const before = of(r, id).length;
    expect((await post(server.url, `/twoGates/${key}/open`, 'one')).status).toBe(200);
    await until('step b committed after the gate opened', () =>
      of(r, id)
        .slice(before)
        .some((e) => e['type'] === 'journal'),
    );
    expect((await post(server.url, `/twoGates/${key}/open`, 'two')).status).toBe(200);
    await until('the run completed', () => of(r, id).some((e) => e['status'] === 'completed'));

    const events = of(r, id);
    const statuses = events.filter((e) => e['type'] === 'status');
    expect(statuses[0]).toMatchObject({
      type: 'status',
      id,
      service: 'twoGates',
      handler: 'run',
      key,
    });
    expect(statuses.map((e) => e['status'])).toContain('running');
    expect(statuses[statuses.length - 1]!['status']).toBe('completed');
    // Journal lengths only grow, and reach the whole journal.
    const lengths = events.filter((e) => e['type'] === 'journal').map((e) => Number(e['length']));
    for (let i = 1; i < lengths.length; i++) expect(lengths[i]).toBeGreaterThan(lengths[i - 1]!);
    const info = await server.store.describe(id, true);
    expect(lengths[lengths.length - 1]).toBe(info!.journal!.length);
    for (const e of events) {
      expect(typeof e['at']).toBe('number');
      expect(e['at']).toBeGreaterThan(info!.createdAt - 1);
    }
    // The completion comes after the last journal event.
    const lastJournal = events.map((e) => e['type']).lastIndexOf('journal');
    expect(events.findIndex((e) => e['status'] === 'completed')).toBeGreaterThan(lastJournal);
    r.close();
  });

  it('filters by service and by invocation id', async () => {
    const key = `filter-${Date.now()}`;
    const byService = await open('/events?service=counter');
    await ready(byService);
    const gates = await send(`/twoGates/${key}/run/send`, null);
    const byId = await open(`/events?id=${gates}`);
    await ready(byId);
    const added = await send(`/counter/${key}/add/send`, 2);
    expect((await post(server.url, `/twoGates/${key}/open`, 'one')).status).toBe(200);
    expect((await post(server.url, `/twoGates/${key}/open`, 'two')).status).toBe(200);
    await until('the counter add completed', () =>
      of(byService, added).some((e) => e['status'] === 'completed'),
    );
    await until('the run completed', () =>
      of(byId, gates).some((e) => e['status'] === 'completed'),
    );
    expect(byService.events.length).toBeGreaterThan(0);
    for (const e of byService.events) expect(e['service']).toBe('counter');
    expect(byId.events.length).toBeGreaterThan(0);
    for (const e of byId.events) expect(e['id']).toBe(gates);
    byService.close();
    byId.close();
  });

  it('refuses a missing token, a bad filter and a stream beyond the limit, changing nothing; a closed stream frees its place and its listener', async () => {
    const rows: [string, string | null, number, string][] = [
      ['/events', null, 401, 'UNAUTHORIZED'],
      ['/events', 'wrong-token', 401, 'UNAUTHORIZED'],
      ['/events?status=running', TOKEN, 400, 'INVALID_FILTER'],
      ['/events?service=', TOKEN, 400, 'INVALID_FILTER'],
      ['/events?id=a&id=b', TOKEN, 400, 'INVALID_FILTER'],
      [`/events?service=${'s'.repeat(300)}`, TOKEN, 400, 'INVALID_FILTER'],
    ];
    for (const [path, token, status, code] of rows) {
      const r = await open(path, token);
      expect(r.status, path).toBe(status);
      expect(await r.body, path).toMatchObject({ errorCode: code });
    }
    // None of them listened: nobody registered interest.
    await until('no interest is registered', async () => (await flags()) === 0, 30_000, 200);

    const a = await open('/events');
    const b = await open('/events?service=counter');
    await Promise.all([ready(a), ready(b)]);
    expect(await flags()).toBe(PARTITIONS);
    const third = await open('/events');
    expect(third.status).toBe(429);
    expect(await third.body).toMatchObject({ code: 429, errorCode: 'TOO_MANY_STREAMS' });
    // A client that leaves frees its place at once.
    a.close();
    const again = await until('a stream is served again', async () => {
      const r = await open('/events');
      if (r.status === 200) return r;
      r.close();
      return undefined;
    });
    await ready(again);
    again.close();
    b.close();
    // With its last listener gone the process stops renewing its interest: the flags expire.
    await until('the interest expired', async () => (await flags()) === 0, 30_000, 200);
  });

  it('every status the scripts set reaches the stream, and each script still does its work while someone listens', async () => {
    const r = await open('/events');
    await ready(r);
    const statuses = (id: string): unknown[] =>
      of(r, id)
        .filter((e) => e['type'] === 'status')
        .map((e) => e['status']);
    const saw = (id: string, status: string): Promise<unknown> =>
      until(`${id} ${status}`, () => statuses(id).includes(status));
    const key = `all-${Date.now()}`;
    const hold = await send(`/evobj/${key}/hold/send`, null);
    await until('the hold published its awakeable', () => held.get(hold));
    // Behind the held key: queued at once, or (delayed) queued by the start script once due.
    const queued = await send(`/evobj/${key}/add/send`, 1);
    const delayedQueued = await send(`/evobj/${key}/add/send?delay=100`, 2);
    const delayed = await send(`/evobj/${key}-free/add/send?delay=100`, 3);
    const flaky = await send('/evflaky/fail/send', null);
    await saw(queued, 'queued');
    await saw(delayedQueued, 'queued');
    await saw(delayed, 'completed');
    // A retry backs off, and the last failed attempt pauses it.
    await saw(flaky, 'paused');
    // An operator pauses the waiting hold and resumes it.
    const auth = { token: TOKEN };
    expect((await adminCall(admin, 'PATCH', `/invocations/${hold}/pause`, auth)).status).toBe(200);
    await saw(hold, 'paused');
    expect((await adminCall(admin, 'PATCH', `/invocations/${hold}/resume`, auth)).status).toBe(200);
    await saw(hold, 'ready');
    // Kill frees the key: the queued ones run in order.
    expect((await adminCall(admin, 'PATCH', `/invocations/${hold}/kill`, auth)).status).toBe(200);
    expect((await adminCall(admin, 'PATCH', `/invocations/${flaky}/kill`, auth)).status).toBe(200);
    for (const id of [hold, queued, delayedQueued, flaky]) await saw(id, 'completed');

    expect(statuses(queued)).toEqual(expect.arrayContaining(['queued', 'completed']));
    expect(statuses(delayedQueued)).toEqual(expect.arrayContaining(['delayed', 'queued']));
    expect(statuses(delayed)[0]).toBe('delayed');
    expect(statuses(flaky)).toEqual(expect.arrayContaining(['backing-off', 'paused', 'completed']));
    for (const id of [queued, delayedQueued, delayed]) {
      const o = await server.store.awaitOutcome(id);
      expect(o.ok, id).toBe(true);
    }
    const killed = await server.store.awaitOutcome(hold);
    expect(killed.ok).toBe(false);
    // Every status event names its target.
    for (const e of r.events.filter((x) => x['type'] === 'status' && x['id'] === queued))
      expect(e).toMatchObject({ service: 'evobj', handler: 'add', key });
    r.close();
  });

  it('keeps an idle stream alive with a comment every eventKeepAliveMs, none earlier', async () => {
    const opened = Date.now();
    const r = await open('/events?id=inv_00nothingwilleverhappenhere');
    const times: number[] = [];
    r.onComment = (c) => {
      if (c === 'keep-alive') times.push(Date.now());
    };
    await until('two keep-alive comments', () => times.length >= 2, 10_000);
    expect(times[0]! - opened).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 5);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 5);
    expect(r.events).toEqual([]);
    r.close();
  });

  it('tells streams to resync when the server may have missed events (its subscriber reconnected)', async ({
    onTestFinished,
  }) => {
    const r = await open('/events');
    // Closed however the test ends: an open stream keeps registering interest (the next test
    // waits for none).
    onTestFinished(() => r.close());
    await ready(r);
    // Drop every pub/sub connection (this file has the Redis to itself): ioredis reconnects.
    const killed = await onEveryMaster(redis, (node) => node.client('KILL', 'TYPE', 'pubsub'));
    expect(killed.reduce((n: number, k) => n + Number(k), 0)).toBeGreaterThan(0);
    await until('a resync event', () => r.events.some((e) => e['type'] === 'resync'));
    // Events flow again afterwards.
    const key = `resync-${Date.now()}`;
    const id = await send(`/counter/${key}/add/send`, 1);
    await until('the add completed, heard after the reconnect', () =>
      of(r, id).some((e) => e['status'] === 'completed'),
    );
    r.close();
  });

  it('publishes nothing while nobody listens, and every change once someone does', async () => {
    await until('no interest is registered', async () => (await flags()) === 0, 30_000, 200);
    const channels = new Set(Array.from({ length: PARTITIONS }, (_, p) => keys.eventsChannel(p)));
    const mon = await startMonitor(redisTarget);
    try {
      const key = `quiet-${Date.now()}`;
      const quiet = await send(`/counter/${key}/add/send`, 1);
      expect((await server.store.awaitOutcome(quiet)).ok).toBe(true);
      await mon.caughtUp();
      const published = (): string[] =>
        mon.commands
          .filter((c) => c.args[0]?.toLowerCase() === 'spublish' && channels.has(c.args[1] ?? ''))
          .map((c) => c.args[2]!);
      expect(published()).toEqual([]);
      // The scripts looked at the flag (inside Lua: no round trip of its own).
      const flagKeys = new Set(Array.from({ length: PARTITIONS }, (_, p) => keys.eventsFlag(p)));
      const flagReads = mon.commands.filter(
        (c) => c.args[0]?.toLowerCase() === 'get' && flagKeys.has(c.args[1] ?? ''),
      );
      expect(flagReads.length).toBeGreaterThan(0);
      expect(flagReads.every((c) => c.source === 'lua')).toBe(true);

      const r = await open('/events');
      await ready(r);
      const heard = await send(`/counter/${key}/add/send`, 1);
      await until('the add completed, heard', () =>
        of(r, heard).some((e) => e['status'] === 'completed'),
      );
      await mon.caughtUp();
      const msgs = published();
      expect(msgs.length).toBeGreaterThan(0);
      expect(msgs.every((m) => m.split('\n')[1] === heard)).toBe(true);
      expect(
        mon.commands
          .filter((c) => c.args[0]?.toLowerCase() === 'spublish' && channels.has(c.args[1] ?? ''))
          .every((c) => c.source === 'lua'),
      ).toBe(true);
      r.close();
    } finally {
      mon.close();
    }
  });
});
