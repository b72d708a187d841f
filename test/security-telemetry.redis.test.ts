/**
 * What a hostile client tries against tracing and metrics: trace headers that are malformed,
 * oversized or not ASCII (over HTTP and in WebSocket frames) are ignored without failing the
 * request and never reach Redis beyond the bounded, re-serialized trace context; requests to
 * names the process does not serve, and endless keys and idempotency keys, add no metric series;
 * `/metrics` answers only GET, with the token. Default tracing (no provider registered), metrics on
 * through the admin port.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { object, type LatchkeyServer, type ObjectContext } from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { deletePrefix, newPrefix, post } from './helpers/harness.js';
import { admin, startAdminServer } from './helpers/control.js';
import { FrameSocket } from './helpers/frames.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'sec-telemetry';
const TRACE = '5bf92f3577b34da6a3ce929d0e0e4736';
const TP = `00-${TRACE}-00f067aa0ba902b7-01`;

const counter = object({
  name: 'sec_counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('v')) ?? 0) + n;
      ctx.set('v', v);
      return v;
    },
  },
});

let server: LatchkeyServer & { adminUrl: string };
let prefix: string;
let redis: RawRedis;

beforeAll(async () => {
  prefix = newPrefix();
  redis = rawClient(redisTarget);
  server = await startAdminServer(redisTarget, prefix, [counter], { token: TOKEN });
});

afterAll(async () => {
  await server?.close();
  redis?.disconnect();
  await deletePrefix(redisTarget, prefix);
});

/** The trace context kept with an invocation (its hash's `tc`), or null. */
async function kept(id: string): Promise<string | null> {
  const p = parseInt(id.slice(4, 6), 36);
  return redis.hget(new Keys(prefix).inv(p, id), 'tc');
}

async function send(key: string, headers: Record<string, string>): Promise<string> {
  const r = await post(server.url, `/sec_counter/${key}/add/send`, 1, headers);
  expect(r.status).toBe(202);
  return (r.body as { invocationId: string }).invocationId;
}

describe('hostile trace headers', () => {
  it.each([
    ['not hex', '00-zz-00f067aa0ba902b7-01'],
    ['upper case', TP.toUpperCase()],
    ['version ff', `ff-${TRACE}-00f067aa0ba902b7-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['version 00 with more fields', `${TP}-x`],
    ['4 KiB long', `${TP}${'a'.repeat(4096)}`],
  ])('a traceparent that is %s is ignored: accepted, nothing kept', async (_what, tp) => {
    const id = await send('bad-tp', { traceparent: tp, tracestate: 'a=1' });
    expect(await kept(id)).toBeNull();
    const d = await admin<{ traceId?: string }>(server.adminUrl, 'GET', `/invocations/${id}`, {
      token: TOKEN,
    });
    expect(d.status).toBe(200);
    expect(d.body.traceId).toBeUndefined();
  });

  it('an oversized or non-ASCII tracestate is dropped; the traceparent is kept, bounded', async () => {
    for (const ts of [`a=${'x'.repeat(600)}`, 'a=\u00e9t\u00e9']) {
      const id = await send('bad-ts', { traceparent: TP, tracestate: ts });
      expect(await kept(id)).toBe(TP);
    }
    // A valid tracestate is kept as the W3C list it is, re-serialized, not as the raw header.
    const id = await send('ok-ts', { traceparent: TP, tracestate: 'vendor=abc' });
    expect(await kept(id)).toBe(`${TP};vendor=abc`);
  });

  it('in a WebSocket frame: a malformed traceparent is ignored, the call is answered', async () => {
    const ws = await FrameSocket.open(server.url);
    try {
      ws.ws.send(
        JSON.stringify({
          id: 'h1',
          type: 'call',
          service: 'sec_counter',
          key: 'ws',
          handler: 'add',
          input: 2,
          headers: {
            traceparent: `00-${TRACE}-${'0'.repeat(16)}-01`,
            tracestate: 'x'.repeat(4000),
          },
        }),
      );
      const r = await ws.next('the result', (f) => f['id'] === 'h1' && f['type'] === 'result');
      expect(r['value']).toBe(2);
      expect(await kept(String(r['invocationId']))).toBeNull();
    } finally {
      ws.ws.close();
    }
  });
});

describe('metrics under hostile traffic', () => {
  it('unknown names, endless keys and idempotency keys add no series; no key reaches /metrics', async () => {
    for (let i = 0; i < 20; i++) {
      expect((await post(server.url, `/nosuch${i}/add`, 1)).status).toBe(404);
      expect((await post(server.url, `/sec_counter/k/nosuch${i}`, 1)).status).toBe(404);
      await send(`key-${i}`, { 'idempotency-key': `idem-${i}` });
    }
    const res = await fetch(`${server.adminUrl}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const text = await res.text();
    const accepted = text
      .split('\n')
      .filter((l) => l.startsWith('latchkey_invocations_accepted_total{'));
    expect(accepted).toEqual([
      expect.stringMatching(
        /^latchkey_invocations_accepted_total\{service="sec_counter",handler="add"\} \d+$/,
      ),
    ]);
    expect(text).not.toMatch(/nosuch|key-\d|idem-\d|inv_/);
  });

  it('/metrics answers GET only, with the token; nothing else is a 500', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect(
      (await fetch(`${server.adminUrl}/metrics`, { method: 'POST', headers: auth })).status,
    ).toBe(404);
    expect((await fetch(`${server.adminUrl}/metrics/extra`, { headers: auth })).status).toBe(404);
    expect(
      (await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: 'Bearer x' } }))
        .status,
    ).toBe(401);
    expect((await fetch(`${server.adminUrl}/metrics?format=x`, { headers: auth })).status).toBe(
      200,
    );
  });
});
