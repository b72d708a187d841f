/**
 * The WebSocket ingress's `subscribe` follows the store's live events instead of polling each
 * watched invocation (it used to read every 200 ms: 3,300 subscriptions cost 4,500 Redis
 * commands/s). Idle subscriptions cost next to nothing; progress and the result still arrive.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { FrameSocket, type Frame } from './helpers/frames.js';
import { startMonitor, type Monitor } from './helpers/monitor.js';
import { wsServices } from './helpers/ws-services.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
/** Idle subscriptions measured. */
const N = 200;
/** How long the commands are counted (ms): longer than the interest renewal period (5 s), so one is in it. */
const WINDOW_MS = 6000;

describe('WebSocket subscriptions without polling', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let socket: FrameSocket;

  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, wsServices, {
      // Quiet background: runs waiting for a gate suspend at once; the reconciler and BullMQ's
      // stall checks rarely run. What remains is what subscriptions cost.
      store: { reconcileIntervalMs: 60_000, stalledIntervalMs: 60_000 },
      serve: { inactivityTimeout: 0, webSocket: { maxSubscriptions: N + 10 } },
    });
    socket = await FrameSocket.open(server.url);
  });
  afterAll(async () => {
    socket.ws.terminate();
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  /** Commands Redis ran for this test's keys over `ms`, sent by clients (not inside scripts). */
  const countFor = async (mon: Monitor, ms: number): Promise<number> => {
    await mon.caughtUp();
    const from = mon.commands.length;
    await new Promise((r) => setTimeout(r, ms));
    await mon.caughtUp();
    return mon.commands
      .slice(from)
      .filter((c) => c.source !== 'lua' && c.args.some((a) => a.includes(prefix))).length;
  };

  it(`${N} idle subscriptions cost less than ${N / 10} Redis commands/s; progress and results still arrive`, async () => {
    const stamp = Date.now();
    const keys = Array.from({ length: N }, (_, i) => `idle-${stamp}-${i}`);
    const ids: string[] = [];
    for (let i = 0; i < N; i += 50) {
      const batch = await Promise.all(
        keys.slice(i, i + 50).map((k) => post(server.url, `/twoGates/${k}/run/send`, null)),
      );
      for (const r of batch) ids.push((r.body as { invocationId: string }).invocationId);
    }
    await until(
      'every run waits for its first gate, suspended',
      async () => {
        for (const id of ids)
          if ((await server.store.describe(id))?.status !== 'suspended') return false;
        return true;
      },
      60_000,
      250,
    );

    const mon = await startMonitor(redisTarget);
    try {
      const before = await countFor(mon, WINDOW_MS);
      ids.forEach((id, i) => socket.send({ id: `s${i}`, type: 'subscribe', invocationId: id }));
      await until(
        'every subscription reported its status',
        () =>
          ids.every((_, i) =>
            socket.frames.some(
              (f) => f['id'] === `s${i}` && f['type'] === 'event' && statusOf(f) === 'suspended',
            ),
          ),
        60_000,
      );
      const during = await countFor(mon, WINDOW_MS);
      const perSecond = ((during - before) * 1000) / WINDOW_MS;
      console.log(
        `[events-ws] ${N} idle subscriptions: ${before} commands in ${WINDOW_MS} ms without, ${during} with (${perSecond.toFixed(1)}/s more; polling every 200 ms would add ${(N * 5 * 2).toLocaleString('en-US')}/s)`,
      );
      expect(perSecond).toBeLessThan(N / 10);
    } finally {
      mon.close();
    }

    // One run moves on: its subscriber hears the new step, then the result.
    const k = keys[0]!;
    const id = ids[0]!;
    const seen = socket.answersTo('s0').length;
    expect((await post(server.url, `/twoGates/${k}/open`, 'one')).status).toBe(200);
    await socket.next('step b of the first run', (f) => {
      if (f['id'] !== 's0' || f['type'] !== 'event') return false;
      const e = f['event'] as { kind: string; entry?: { k: string; n?: string } };
      return e.kind === 'journal' && e.entry?.n === 'b';
    });
    expect((await post(server.url, `/twoGates/${k}/open`, 'two')).status).toBe(200);
    const result = await socket.next(
      'the result',
      (f) => f['id'] === 's0' && f['type'] === 'result',
    );
    expect(result).toMatchObject({ invocationId: id, ok: true });
    const after = socket.answersTo('s0').slice(seen);
    const statuses = after
      .filter((f) => f['type'] === 'event')
      .map(statusOf)
      .filter(Boolean);
    expect(statuses[statuses.length - 1]).toBe('completed');
    // The result comes last.
    expect(after[after.length - 1]!['type']).toBe('result');
    // Journal events are one per entry, in order, without gaps, from the first.
    const indices = socket
      .answersTo('s0')
      .filter((f) => f['type'] === 'event' && (f['event'] as { kind: string }).kind === 'journal')
      .map((f) => (f['event'] as { index: number }).index);
    expect(indices).toEqual(indices.map((_, i) => i));
  });
});

function statusOf(f: Frame): string | undefined {
  const e = f['event'] as { kind: string; status?: string } | undefined;
  return e?.kind === 'status' ? e.status : undefined;
}

describe('WebSocket subscriptions free their listeners', () => {
  const prefix = newPrefix();
  const keys = new Keys(prefix);
  let server: LatchkeyServer;
  let redis: RawRedis;

  beforeAll(async () => {
    // A short interest TTL: the test sees it expire once nobody listens.
    server = await startServer(redisTarget, prefix, wsServices, {
      store: { eventsFlagTtlMs: 1500 },
    });
    redis = rawClient(redisTarget);
  });
  afterAll(async () => {
    await server.close();
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });

  const listening = async (): Promise<boolean> => (await redis.exists(keys.eventsFlag(0))) === 1;

  it('the interest lasts while a subscription does, through an unsubscribe, and ends with the socket', async () => {
    const stamp = Date.now();
    const ids: string[] = [];
    for (const k of [`a-${stamp}`, `b-${stamp}`]) {
      const r = await post(server.url, `/twoGates/${k}/run/send`, null);
      ids.push((r.body as { invocationId: string }).invocationId);
    }
    expect(await listening()).toBe(false);
    const socket = await FrameSocket.open(server.url);
    for (const [i, id] of ids.entries())
      expect(
        await socket.request({ id: `s${i}`, type: 'subscribe', invocationId: id }),
      ).toMatchObject({ type: 'subscribed' });
    await until('the interest is registered', listening);
    expect(
      await socket.request({ id: 'u0', type: 'unsubscribe', subscription: 's0' }),
    ).toMatchObject({ type: 'unsubscribed' });
    // One subscription left: the interest is still renewed well past its TTL.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await listening()).toBe(true);
    socket.ws.terminate();
    await until(
      'the interest expired with the last subscription',
      async () => !(await listening()),
    );
  });
});
