/**
 * A push deployment's handler, driven in-process without any engine or store: the fetch handler
 * with `Request`s, the Lambda handler with synthetic API Gateway events. One step per request:
 * the answer to an empty journal is the first step's commit; sent back with that entry, the
 * handler completes. Hostile requests get a precise refusal and run nothing.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  handlers,
  object,
  service,
  type Context,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { createEndpointHandler as fetchHandler } from '@latchkey/core/fetch';
import { createEndpointHandler as lambdaHandler } from '@latchkey/core/lambda';
import { childInvocationId } from '@latchkey/core/internal';
import { retryAfterMs } from '../src/push/deployments.js';
import type { PushRequest, PushResponse } from '../src/push/protocol.js';
import { signer, verifier } from '../src/push/signing.js';

let ran = 0;
const stepper = service({
  name: 'stepper',
  handlers: {
    twice: async (ctx: Context, n: number): Promise<{ a: number; child: string }> => {
      const a = await ctx.run('double', () => {
        ran++;
        return n * 2;
      });
      const child = ctx.serviceSendClient<typeof stepper>({ name: 'stepper' }).twice(a);
      return { a, child: await child.invocationId };
    },
  },
});
const tally = object({
  name: 'tally',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('v')) ?? 0) + n;
      ctx.set('v', v);
      return v;
    },
    names: handlers.object.shared(async (ctx: ObjectSharedContext) => ctx.stateKeys()),
    peek: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('v')) ?? 0,
    ),
  },
});
const services = [stepper, tally];
const TYPE = 'application/vnd.latchkey.invoke.v1+json';

function request(over: Partial<PushRequest> = {}): PushRequest {
  return {
    v: 1,
    fence: 'f-1',
    id: 'inv_00abcdefghijklmnopqrstuv',
    attempt: 1,
    target: { service: 'stepper', handler: 'twice' },
    mode: 'service',
    input: '21',
    headers: {},
    journal: [],
    completions: [],
    state: [],
    now: 1_700_000_000_000,
    seed: 'c2VlZC1zZWVkLXNlZWQ',
    cancelRequested: false,
    partitions: 16,
    ...over,
  };
}

const fetchOf = (h: (r: Request) => Promise<Response>, path: string, init: RequestInit = {}) =>
  h(new Request(`http://fn.example${path}`, init));

async function invoke(
  h: (r: Request) => Promise<Response>,
  req: PushRequest,
): Promise<PushResponse> {
  const t = req.target;
  const res = await fetchOf(h, `/invoke/${t.service}/${t.handler}`, {
    method: 'POST',
    headers: { 'content-type': TYPE },
    body: JSON.stringify(req),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(TYPE);
  return (await res.json()) as PushResponse;
}

describe('push endpoint (fetch)', () => {
  const h = fetchHandler({ services, logger: { ...console, warn: () => undefined } });

  it('answers discovery with every service, handler kind and option', async () => {
    const res = await fetchOf(h, '/discover');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.latchkey.manifest.v1+json');
    const m = (await res.json()) as {
      protocol: string;
      services: { name: string; handlers: { name: string; kind: string | null }[] }[];
    };
    expect(m.protocol).toBe('latchkey-push');
    expect(m.services.map((s) => s.name)).toEqual(['stepper', 'tally']);
    expect(m.services[1]!.handlers.map((x) => [x.name, x.kind])).toEqual([
      ['add', 'exclusive'],
      ['names', 'shared'],
      ['peek', 'shared'],
    ]);
  });

  it('stops at the first step, then replays it and completes', async () => {
    ran = 0;
    const first = await invoke(h, request());
    expect(first).toMatchObject({
      v: 1,
      fence: 'f-1',
      type: 'commit',
      from: 0,
      entries: [{ k: 'run', n: 'double', v: 42 }],
    });
    expect(ran).toBe(1);
    // The engine committed it: the next request carries it, and the closure does not run again.
    const second = await invoke(
      h,
      request({ fence: 'f-2', journal: [{ k: 'run', n: 'double', v: 42 }] }),
    );
    expect(ran).toBe(1);
    expect(second.type).toBe('commit');
    expect(second.from).toBe(1);
    const send = second.entries[0] as { k: string; id: string };
    expect(send.k).toBe('send');
    // The child's id is the engine's own derivation (from the seed, the index and the partitions).
    const expected = childInvocationId(16, request().seed, 1, {
      service: 'stepper',
      handler: 'twice',
    });
    expect(send.id).toBe(expected);
    expect(second.effects).toMatchObject([{ t: 'accept', index: 1 }]);
    const third = await invoke(
      h,
      request({
        fence: 'f-3',
        journal: [{ k: 'run', n: 'double', v: 42 }, second.entries[0]!] as PushRequest['journal'],
      }),
    );
    expect(third).toMatchObject({ type: 'complete', from: 2, outcome: { ok: true } });
    expect(JSON.parse((third as { outcome: { value: string } }).outcome.value)).toEqual({
      a: 42,
      child: expected,
    });
  });

  it('works on the state the request carries', async () => {
    const add = await invoke(
      h,
      request({
        target: { service: 'tally', handler: 'add', key: 'k' },
        mode: 'exclusive',
        input: '5',
        state: [['v', '7']],
      }),
    );
    expect(add).toMatchObject({
      type: 'complete',
      entries: [
        { k: 'get', n: 'v', v: 7 },
        { k: 'set', n: 'v', v: 12 },
      ],
      outcome: { ok: true, value: '12' },
    });
  });

  it('asks for a state value it was sent by name only, then runs with it', async () => {
    const lazy = request({
      target: { service: 'tally', handler: 'add', key: 'k' },
      mode: 'exclusive',
      input: '5',
      state: [['other', '1']],
      lazyState: ['v'],
    });
    expect(await invoke(h, lazy)).toMatchObject({ type: 'state', names: ['v'], entries: [] });
    const full = await invoke(h, {
      ...lazy,
      state: [
        ['other', '1'],
        ['v', '7'],
      ],
      lazyState: [],
    });
    expect(full).toMatchObject({ type: 'complete', outcome: { ok: true, value: '12' } });
    // The names it was not sent count among the key's names.
    const names = await invoke(
      h,
      request({
        target: { service: 'tally', handler: 'names', key: 'k' },
        mode: 'shared',
        input: '',
        state: [['other', '1']],
        lazyState: ['v'],
      }),
    );
    expect(names).toMatchObject({
      type: 'complete',
      outcome: { ok: true, value: '["other","v"]' },
    });
  });

  it('answers a handler failure with the retry its policy asks for', async () => {
    const boom = fetchHandler({
      services: [
        service({ name: 'boom', handlers: { go: async () => Promise.reject(new Error('kaput')) } }),
      ],
      logger: { ...console, warn: () => undefined },
    });
    const a = await invoke(
      boom,
      request({ target: { service: 'boom', handler: 'go' }, attempt: 3 }),
    );
    expect(a).toMatchObject({ type: 'retry', failure: { message: 'kaput' }, delayMs: 200 });
  });

  it('refuses hostile requests precisely and runs nothing', async () => {
    ran = 0;
    const post = (path: string, body: string, type = TYPE): Promise<Response> =>
      fetchOf(h, path, { method: 'POST', headers: { 'content-type': type }, body });
    const cases: [Promise<Response>, number, string][] = [
      [
        post('/invoke/stepper/twice', JSON.stringify(request()), 'application/json'),
        415,
        'UNSUPPORTED_CONTENT_TYPE',
      ],
      [post('/invoke/stepper/twice', '{nope'), 400, 'INVALID_JSON'],
      [
        post('/invoke/stepper/twice', JSON.stringify({ ...request(), journal: [{ k: 'bogus' }] })),
        400,
        'INVALID_BODY',
      ],
      [post('/invoke/tally/add', JSON.stringify(request())), 400, 'INVALID_PATH'],
      [post('/invoke/stepper/%E0%A4%A', JSON.stringify(request())), 400, 'INVALID_PATH'],
      [post('/elsewhere', '{}'), 404, 'NOT_FOUND'],
      [fetchOf(h, '/invoke/stepper/twice'), 405, 'METHOD_NOT_ALLOWED'],
      [fetchOf(h, '/discover', { method: 'POST', body: '{}' }), 405, 'METHOD_NOT_ALLOWED'],
    ];
    for (const [res, status, code] of cases) {
      const r = await res;
      expect([r.status, ((await r.json()) as { errorCode: string }).errorCode]).toEqual([
        status,
        code,
      ]);
    }
    const small = fetchHandler({ services, maxBodyBytes: 100 });
    const big = await fetchOf(small, '/invoke/stepper/twice', {
      method: 'POST',
      headers: { 'content-type': TYPE },
      body: 'x'.repeat(101),
    });
    expect(big.status).toBe(413);
    // A chunked body (no content-length) is cut off as it arrives.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(40).fill(120));
        c.close();
      },
    });
    const chunked = await small(
      new Request('http://fn.example/invoke/stepper/twice', {
        method: 'POST',
        headers: { 'content-type': TYPE },
        body: stream,
        duplex: 'half',
      } as RequestInit),
    );
    expect(chunked.status).toBe(413);
    expect(ran).toBe(0);
  });
});

describe('push endpoint (Lambda)', () => {
  const h = lambdaHandler({ services });

  it('serves API Gateway v2 and v1 events, base64 bodies included', async () => {
    const v2 = await h({
      rawPath: '/invoke/tally/add',
      requestContext: { http: { method: 'POST' } },
      headers: { 'Content-Type': TYPE },
      body: Buffer.from(
        JSON.stringify(
          request({
            target: { service: 'tally', handler: 'add', key: 'k' },
            mode: 'exclusive',
            input: '2',
          }),
        ),
      ).toString('base64'),
      isBase64Encoded: true,
    });
    expect(v2.statusCode).toBe(200);
    expect(JSON.parse(v2.body)).toMatchObject({
      type: 'complete',
      outcome: { ok: true, value: '2' },
    });
    const v1 = await h({ path: '/stage/discover', httpMethod: 'GET', headers: {} });
    expect(v1.statusCode).toBe(200);
    expect(JSON.parse(v1.body)).toMatchObject({ protocol: 'latchkey-push' });
  });
});

describe('request signing', () => {
  const pair = () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return {
      pub: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      priv: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  };

  it('accepts the engine’s signature only: for this path and body, recent, by a known key', () => {
    const engine = pair();
    const other = pair();
    let now = Date.now();
    const check = verifier([engine.pub], () => now)!;
    const sig = signer(engine.priv)('/invoke/a/b', '{"x":1}');
    expect(check('/invoke/a/b', '{"x":1}', sig)).toBe(true);
    expect(check('/invoke/a/c', '{"x":1}', sig)).toBe(false);
    expect(check('/invoke/a/b', '{"x":2}', sig)).toBe(false);
    expect(check('/invoke/a/b', '{"x":1}', signer(other.priv)('/invoke/a/b', '{"x":1}'))).toBe(
      false,
    );
    expect(check('/invoke/a/b', '{"x":1}', undefined)).toBe(false);
    expect(check('/invoke/a/b', '{"x":1}', 'v1;t=1;AAAA')).toBe(false);
    now += 6 * 60_000;
    expect(check('/invoke/a/b', '{"x":1}', sig)).toBe(false);
  });

  it('answers 401 to an unsigned request when identity keys are set', async () => {
    const h = fetchHandler({ services, identityKeys: [pair().pub] });
    const res = await fetchOf(h, '/discover');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 401, errorCode: 'UNAUTHORIZED' });
  });
});

describe('Retry-After', () => {
  it('reads seconds and HTTP dates, capped at an hour', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs('999999')).toBe(3_600_000);
    const d = retryAfterMs(new Date(Date.now() + 10_000).toUTCString())!;
    expect(d).toBeGreaterThan(8000);
    expect(d).toBeLessThanOrEqual(10_000);
  });
});

describe('push endpoint (node:http)', () => {
  it('reads bodies as the ingress does: over the limit is 413, and nothing runs', async () => {
    const { createServer } = await import('node:http');
    const { createEndpointHandler } = await import('@latchkey/core');
    ran = 0;
    const server = createServer(createEndpointHandler({ services, maxBodyBytes: 100 }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const big = await fetch(`${url}/invoke/stepper/twice`, {
        method: 'POST',
        headers: { 'content-type': TYPE },
        body: 'x'.repeat(101),
      });
      expect(big.status).toBe(413);
      expect(await big.json()).toMatchObject({ errorCode: 'BODY_TOO_LARGE' });
      const d = await fetch(`${url}/discover`);
      expect(d.status).toBe(200);
      expect(ran).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('push endpoint (node:http2)', () => {
  it('serves discovery and a step over HTTP/2 with the handler of @latchkey/core', async () => {
    const { createServer, connect } = await import('node:http2');
    const { createEndpointHandler } = await import('@latchkey/core');
    const server = createServer(createEndpointHandler({ services }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = connect(`http://127.0.0.1:${port}`);
    const ask = (path: string, body?: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const req = client.request({
          ':method': body === undefined ? 'GET' : 'POST',
          ':path': path,
          ...(body === undefined ? {} : { 'content-type': TYPE }),
        });
        let status = 0;
        let text = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (text += c.toString()));
        req.on('end', () => resolve({ status, text }));
        req.on('error', reject);
        req.end(body);
      });
    try {
      const d = await ask('/discover');
      expect(d.status).toBe(200);
      expect(JSON.parse(d.text)).toMatchObject({ protocol: 'latchkey-push' });
      const tally = request({
        target: { service: 'tally', handler: 'add', key: 'k' },
        mode: 'exclusive',
        input: '4',
      });
      const a = await ask('/invoke/tally/add', JSON.stringify(tally));
      expect(a.status).toBe(200);
      expect(JSON.parse(a.text)).toMatchObject({ type: 'complete', outcome: { value: '4' } });
    } finally {
      client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
