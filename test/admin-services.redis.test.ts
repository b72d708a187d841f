/**
 * The services routes of the admin API (docs/ADMIN-API.md, "Services"):
 *
 * - GET /services and GET /services/{service}: kinds, handler kinds, description and metadata,
 *   options (durations in ms), ingress-private handlers, and JSON Schemas of input and output from
 *   the handlers' zod schemas (`z.toJSONSchema`), `{}` without one; content types of byte serdes;
 * - 404 NOT_FOUND for an unknown service, 401 without the token (nothing answered);
 * - GET /openapi.json: an OpenAPI 3.1 document with one path per public handler route (call and
 *   send, a workflow's attach and output), the handlers' schemas, every `$ref` resolvable; and the
 *   documented call route answers as documented.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import {
  handlers,
  object,
  serde,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { deletePrefix, newPrefix, post, startServer } from './helpers/harness.js';

const redisTarget = inject('redisTarget');
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers whose shape is under test
type Any = any;
const TOKEN = 'services-token';

const Order = z.object({
  sku: z.string().min(1),
  qty: z.number().int().positive().default(1),
  tags: z.array(z.string()).optional(),
});
const Quote = z.object({ total: z.number(), currency: z.enum(['EUR', 'USD']) });

const shop = service({
  name: 'shop',
  description: 'Prices orders',
  metadata: { team: 'payments' },
  handlers: {
    quote: handlers.handler(
      {
        input: Order,
        output: Quote,
        description: 'The price of an order',
        metadata: { owner: 'ada' },
        retryPolicy: { maxAttempts: 5, initialInterval: { seconds: 2 } },
        journalRetention: { hours: 1 },
      },
      async (_ctx: Context, o: z.infer<typeof Order>) => ({
        total: o.qty * 3,
        currency: 'EUR' as const,
      }),
    ),
    anything: async (_ctx: Context, v: unknown) => v,
    bytes: handlers.handler(
      { input: serde.binary, output: serde.binary },
      async (_ctx: Context, b: Uint8Array) => b,
    ),
    internal: handlers.handler(
      { ingressPrivate: true, retryPolicy: { maxAttempts: Infinity } },
      async () => 'x',
    ),
  },
});

const counter = object({
  name: 'counter',
  handlers: {
    add: async (_ctx: ObjectContext, n: number) => n,
    get: handlers.object.shared(async (_ctx: ObjectSharedContext) => 0),
  },
});

const signup = workflow({
  name: 'signup',
  handlers: {
    run: handlers.workflow.workflow(
      { input: z.email(), output: z.boolean() },
      async (_ctx: WorkflowContext, _email: string) => true,
    ),
    click: handlers.workflow.shared(async (_ctx: WorkflowSharedContext, _s: string) => 'ok'),
  },
});

const prefix = newPrefix();
let server: LatchkeyServer;
let admin: string;

beforeAll(async () => {
  server = await startServer(redisTarget, prefix, [shop, counter, signup], {
    serve: { admin: { port: 0, token: TOKEN } },
  });
  admin = server.adminUrl!;
});
afterAll(async () => {
  await server?.close();
  await deletePrefix(redisTarget, prefix);
});

async function adminGet(
  path: string,
  token: string | null = TOKEN,
): Promise<{ status: number; body: Any }> {
  const res = await fetch(
    `${admin}${path}`,
    token ? { headers: { authorization: `Bearer ${token}` } } : {},
  );
  return { status: res.status, body: (await res.json()) as unknown };
}

describe('GET /services', () => {
  it('lists every definition with its kind and its handlers, in order', async () => {
    const { status, body } = await adminGet('/services');
    expect(status).toBe(200);
    expect(
      body.services.map((s: Any) => [s.name, s.kind, s.handlers.map((h: Any) => h.name)]),
    ).toEqual([
      ['shop', 'service', ['quote', 'anything', 'bytes', 'internal']],
      ['counter', 'object', ['add', 'get']],
      ['signup', 'workflow', ['run', 'click']],
    ]);
  });

  it('GET /services/{service}: handler kinds per definition kind', async () => {
    const kinds = async (name: string): Promise<unknown> =>
      (await adminGet(`/services/${name}`)).body.handlers.map((h: Any) => h.kind);
    expect(await kinds('shop')).toEqual([null, null, null, null]);
    expect(await kinds('counter')).toEqual(['exclusive', 'shared']);
    expect(await kinds('signup')).toEqual(['workflow', 'shared']);
  });

  it('describes a zod-typed handler: JSON Schemas, description, metadata, options in ms', async () => {
    const { status, body } = await adminGet('/services/shop');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      name: 'shop',
      kind: 'service',
      description: 'Prices orders',
      metadata: { team: 'payments' },
    });
    const quote = body.handlers.find((h: Any) => h.name === 'quote');
    expect(quote.input).toEqual(z.toJSONSchema(Order, { io: 'input' }));
    expect(quote.output).toEqual(z.toJSONSchema(Quote, { io: 'output' }));
    // Input side: `qty` has a default, so a client may leave it out.
    expect(quote.input.required).toEqual(['sku']);
    expect(quote.input.properties.qty).toMatchObject({ type: 'integer', default: 1 });
    expect(quote.output.properties.currency).toEqual({ type: 'string', enum: ['EUR', 'USD'] });
    expect(quote).toMatchObject({
      description: 'The price of an order',
      metadata: { owner: 'ada' },
      private: false,
      options: {
        retryPolicy: { maxAttempts: 5, initialIntervalMs: 2000 },
        journalRetentionMs: 3_600_000,
      },
      inputContentType: 'application/json',
      outputContentType: 'application/json',
    });
  });

  it('a handler without schema takes anything ({}); bytes say their content type; private is marked', async () => {
    const { body } = await adminGet('/services/shop');
    const by = (n: string): Any => body.handlers.find((h: Any) => h.name === n);
    expect(by('anything')).toMatchObject({ input: {}, output: {}, private: false, options: {} });
    expect(by('bytes')).toMatchObject({
      input: {},
      output: {},
      inputContentType: 'application/octet-stream',
      outputContentType: 'application/octet-stream',
    });
    expect(by('internal')).toMatchObject({
      private: true,
      options: { ingressPrivate: true, retryPolicy: { maxAttempts: null } },
    });
  });

  it('404 NOT_FOUND for an unknown service; 401 without the token', async () => {
    expect(await adminGet('/services/nope')).toEqual({
      status: 404,
      body: { code: 404, errorCode: 'NOT_FOUND', message: "no service named 'nope'" },
    });
    for (const path of ['/services', '/services/shop', '/openapi.json']) {
      const r = await adminGet(path, null);
      expect(r.status, path).toBe(401);
      expect(r.body.errorCode).toBe('UNAUTHORIZED');
      expect((await adminGet(path, 'wrong')).status).toBe(401);
    }
  });
});

describe('hostile requests to the services routes', () => {
  it.each([
    ['GET', '/services/%ZZ', 400, 'INVALID_PATH'],
    ['GET', `/services/${'x'.repeat(5000)}`, 404, 'NOT_FOUND'],
    ['GET', '/services/shop/extra', 404, 'NOT_FOUND'],
    ['POST', '/services', 404, 'NOT_FOUND'],
    ['DELETE', '/services/shop', 404, 'NOT_FOUND'],
    ['PUT', '/openapi.json', 404, 'NOT_FOUND'],
  ])('%s %s → %d %s', async (method, path, status, code) => {
    const res = await fetch(`${admin}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(status);
    const body = (await res.json()) as { errorCode: string; message: string };
    expect(body.errorCode).toBe(code);
    expect(body.message.length).toBeLessThan(600);
    // Still serving.
    expect((await adminGet('/services')).status).toBe(200);
  });
});

/** Every `$ref` in a document, resolved against it; the unresolvable ones. */
function brokenRefs(doc: unknown): string[] {
  const broken: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref' && typeof x === 'string') {
          let at: Any = doc;
          for (const part of x.replace(/^#\//, '').split('/')) at = at?.[part];
          if (at === undefined) broken.push(x);
        } else walk(x);
      }
    }
  };
  walk(doc);
  return broken;
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document with one path per public handler route', async () => {
    const { status, body } = await adminGet('/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    expect(typeof body.info.title).toBe('string');
    expect(typeof body.info.version).toBe('string');
    expect(Object.keys(body.paths).sort()).toEqual(
      [
        '/shop/quote',
        '/shop/quote/send',
        '/shop/anything',
        '/shop/anything/send',
        '/shop/bytes',
        '/shop/bytes/send',
        '/counter/{key}/add',
        '/counter/{key}/add/send',
        '/counter/{key}/get',
        '/counter/{key}/get/send',
        '/signup/{key}/run',
        '/signup/{key}/run/send',
        '/signup/{key}/click',
        '/signup/{key}/click/send',
        '/restate/workflow/signup/{key}/attach',
        '/restate/workflow/signup/{key}/output',
      ].sort(),
    );
    expect(brokenRefs(body)).toEqual([]);
    // Every templated path declares its `key` as a required path parameter.
    for (const [path, item] of Object.entries(body.paths as Record<string, Record<string, Any>>)) {
      for (const op of Object.values(item)) {
        const declared = (op.parameters ?? []).some(
          (p: Any) => p.name === 'key' && p.in === 'path' && p.required === true,
        );
        expect(declared, path).toBe(path.includes('{key}'));
        expect(Object.keys(op.responses).length, path).toBeGreaterThan(0);
      }
    }
    const ids = Object.values(body.paths).flatMap((item: Any) =>
      Object.values(item).map((op: Any) => op.operationId),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("carries each handler's schemas, the key parameter, the idempotency header and the delay", async () => {
    const { body } = await adminGet('/openapi.json');
    const { $schema: _d, ...input } = z.toJSONSchema(Order, { io: 'input' });
    const quote = body.paths['/shop/quote'].post;
    expect(quote.requestBody.content['application/json'].schema).toEqual(input);
    expect(quote.responses['200'].content['application/json'].schema.properties.total).toEqual({
      type: 'number',
    });
    const send = body.paths['/counter/{key}/add/send'].post;
    expect(send.parameters).toContainEqual(
      expect.objectContaining({ name: 'key', in: 'path', required: true }),
    );
    expect(send.parameters).toContainEqual({ $ref: '#/components/parameters/Delay' });
    expect(send.parameters).toContainEqual({ $ref: '#/components/parameters/IdempotencyKey' });
    expect(send.responses['202']).toBeDefined();
    expect(body.components.parameters.IdempotencyKey).toMatchObject({
      name: 'idempotency-key',
      in: 'header',
    });
    expect(body.components.parameters.Delay).toMatchObject({ name: 'delay', in: 'query' });
    expect(body.paths['/shop/bytes'].post.requestBody.content).toHaveProperty(
      'application/octet-stream',
    );
    expect(body.paths['/restate/workflow/signup/{key}/output'].get.responses).toHaveProperty('470');
  });

  it('the documented call route answers as documented', async () => {
    const { body } = await adminGet('/openapi.json');
    expect(body.paths['/shop/quote'].post.responses).toHaveProperty('200');
    const ok = await post(server.url, '/shop/quote', { sku: 'a', qty: 2 });
    expect(ok).toMatchObject({ status: 200, body: { total: 6, currency: 'EUR' } });
    const bad = await post(server.url, '/shop/quote', { qty: 2 });
    expect(bad.status).toBe(400);
  });
});
