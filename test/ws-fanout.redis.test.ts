import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import type { LatchkeyServer } from '@latchkey/core';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { wsServices } from './helpers/ws-services.js';

const redisTarget = inject('redisTarget');

const SUBSCRIBERS = 1000;
/** Sockets opened at once (keeps the listen backlog from overflowing). */
const CONNECT_BATCH = 100;

interface Subscriber {
  ws: WebSocket;
  subscribed: string | undefined;
  statuses: string[];
  journal: number[];
  result: Record<string, unknown> | undefined;
  errors: unknown[];
  /** Index in `order` of each frame type, to check that the result came last. */
  order: string[];
}

describe('WebSocket fan-out', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  const subscribers: Subscriber[] = [];

  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, wsServices);
  });
  afterEach(() => {
    for (const s of subscribers.splice(0)) s.ws.terminate();
  });
  afterAll(async () => {
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  it(`${SUBSCRIBERS} concurrent WebSocket subscribers to one workflow all receive its result`, async () => {
    const key = `fan-${Date.now()}`;
    const submitted = await post(server.url, `/job/${key}/run/send`, 'fan');
    expect(submitted.status).toBe(202);
    const invocationId = (submitted.body as { invocationId: string }).invocationId;
    const url = `${server.url.replace('http', 'ws')}/ws`;

    const t0 = Date.now();
    const open = (): Promise<Subscriber> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        const s: Subscriber = {
          ws,
          subscribed: undefined,
          statuses: [],
          journal: [],
          result: undefined,
          errors: [],
          order: [],
        };
        ws.on('message', (data) => {
          const f = JSON.parse(String(data)) as Record<string, unknown>;
          s.order.push(String(f['type']));
          if (f['type'] === 'subscribed') s.subscribed = f['invocationId'] as string;
          else if (f['type'] === 'event') {
            const ev = f['event'] as { kind: string; status?: string; index?: number };
            if (ev.kind === 'status') s.statuses.push(ev.status!);
            else s.journal.push(ev.index!);
          } else if (f['type'] === 'result') s.result = f;
          else s.errors.push(f);
        });
        ws.on('error', (e) => s.errors.push(e));
        ws.once('open', () => {
          ws.send(JSON.stringify({ id: 'sub', type: 'subscribe', workflow: 'job', key }));
          resolve(s);
        });
        ws.once('close', () => reject(new Error('closed before open')));
      });
    for (let i = 0; i < SUBSCRIBERS; i += CONNECT_BATCH) {
      subscribers.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(CONNECT_BATCH, SUBSCRIBERS - i) }, open),
        )),
      );
    }
    await until(
      'every subscription is confirmed',
      () => subscribers.every((s) => s.subscribed !== undefined),
      60_000,
    );
    const tSubscribed = Date.now();
    expect(subscribers.filter((s) => s.subscribed === invocationId)).toHaveLength(SUBSCRIBERS);
    expect(subscribers.every((s) => s.result === undefined)).toBe(true);

    // Let the workflow finish: every subscriber gets the result.
    expect((await post(server.url, `/job/${key}/release`, 'go')).status).toBe(200);
    await until(
      'every subscriber has the result',
      () => subscribers.every((s) => s.result !== undefined),
      60_000,
    );
    const tDone = Date.now();

    for (const s of subscribers) {
      expect(s.errors).toEqual([]);
      expect(s.result).toEqual({
        id: 'sub',
        type: 'result',
        invocationId,
        ok: true,
        value: 'A:fan|go|B',
      });
      // subscribed first, the result last (and once), progress in between.
      expect(s.order[0]).toBe('subscribed');
      expect(s.order.indexOf('result')).toBe(s.order.length - 1);
      expect(s.statuses[s.statuses.length - 1]).toBe('completed');
      // Journal events arrive in order, without gaps or repeats, from wherever the subscriber joined.
      for (let i = 1; i < s.journal.length; i++) expect(s.journal[i]).toBe(s.journal[i - 1]! + 1);
    }
    // The workflow's last step (`b`) was journaled after every subscriber joined: all of them saw it.
    const info = await server.store.describe(invocationId, true);
    const lastIndex = info!.journal!.length - 1;
    expect(info!.journal![lastIndex]).toMatchObject({ k: 'run', n: 'b' });
    expect(subscribers.filter((s) => s.journal.includes(lastIndex))).toHaveLength(SUBSCRIBERS);
    console.log(
      `[ws-fanout] ${SUBSCRIBERS} subscribers: connected+subscribed in ${tSubscribed - t0} ms, results ${tDone - tSubscribed} ms after release`,
    );
  });
});
