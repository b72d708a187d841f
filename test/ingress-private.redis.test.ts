/**
 * `ingressPrivate` handlers are not callable through the ingress (HTTP or
 * WebSocket), yet other handlers call them as usual.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { handlers, service, type Context, type LatchkeyServer } from '@latchkey/core';
import { deletePrefix, newPrefix, post, startServer } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

const internal = service({
  name: 'internal',
  handlers: {
    secret: handlers.handler(
      { ingressPrivate: true },
      async (_ctx: Context, who: string) => `secret for ${who}`,
    ),
  },
});
const front = service({
  name: 'front',
  handlers: {
    ask: async (ctx: Context, who: string) => ctx.serviceClient(internal).secret(who),
  },
});

describe('ingressPrivate', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, [internal, front]);
  });
  afterAll(async () => {
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('answers 404 over HTTP and as a WebSocket error frame, while handlers can still call it', async () => {
    for (const path of [
      '/internal/secret',
      '/internal/secret/send',
      '/restate/call/internal/secret',
    ]) {
      const r = await post(server.url, path, 'ada');
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 404, errorCode: 'NOT_FOUND' });
    }
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
    await new Promise((r) => ws.once('open', r));
    const frame = new Promise<Record<string, unknown>>((r) =>
      ws.once('message', (m) => r(JSON.parse(String(m)) as Record<string, unknown>)),
    );
    ws.send(
      JSON.stringify({
        id: 'p1',
        type: 'call',
        service: 'internal',
        handler: 'secret',
        input: 'ada',
      }),
    );
    expect(await frame).toMatchObject({
      id: 'p1',
      type: 'error',
      code: 404,
      errorCode: 'NOT_FOUND',
    });
    ws.close();

    const viaHandler = await post(server.url, '/front/ask', 'ada');
    expect(viaHandler).toMatchObject({ status: 200, body: 'secret for ada' });
  });
});
