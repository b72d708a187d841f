/**
 * `POST /services/{service}/handlers/{handler}/invoke` on the admin port (the web UI's invoke
 * form): behind the token, a send through the ingress core with the HTTP ingress's checks. A good
 * request starts the invocation (202); every bad one gets its status and code and changes nothing
 * in Redis (every key under the test prefix, BullMQ's included).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { handlers, service, type Context } from '@latchkey/core';
import { deletePrefix, newPrefix, post, until } from './helpers/harness.js';
import { admin, startAdminServer } from './helpers/control.js';
import { settledKeyspace, snapshotKeyspace } from './helpers/keyspace.js';
import { uiServices } from './helpers/ui-services.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'invoke-token';

const hidden = service({
  name: 'inv_hidden',
  handlers: {
    secret: handlers.handler({ ingressPrivate: true }, async (_ctx: Context) => 'secret'),
  },
});

interface Row {
  name: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
  errorCode: string;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const AUTH = { authorization: `Bearer ${TOKEN}` };
const greet = '/services/ui_greeter/handlers/greet/invoke';
const add = '/services/ui_counter/handlers/add/invoke';

const rows: Row[] = [
  {
    name: 'no token',
    path: greet,
    body: '{"input":{"name":"a"}}',
    headers: JSON_TYPE,
    status: 401,
    errorCode: 'UNAUTHORIZED',
  },
  {
    name: 'unknown service',
    path: '/services/nope/handlers/greet/invoke',
    body: '{}',
    status: 404,
    errorCode: 'NOT_FOUND',
  },
  {
    name: 'unknown handler',
    path: '/services/ui_greeter/handlers/nope/invoke',
    body: '{}',
    status: 404,
    errorCode: 'NOT_FOUND',
  },
  {
    name: 'private handler',
    path: '/services/inv_hidden/handlers/secret/invoke',
    body: '{}',
    status: 404,
    errorCode: 'NOT_FOUND',
  },
  {
    name: 'text/plain body',
    path: greet,
    body: '{"input":{"name":"a"}}',
    headers: { ...AUTH, 'content-type': 'text/plain' },
    status: 415,
    errorCode: 'UNSUPPORTED_CONTENT_TYPE',
  },
  {
    name: 'malformed JSON',
    path: greet,
    body: '{"input":',
    status: 400,
    errorCode: 'INVALID_JSON',
  },
  {
    name: 'JSON too deep',
    path: greet,
    body: `{"input":${'['.repeat(80)}${']'.repeat(80)}}`,
    status: 400,
    errorCode: 'JSON_TOO_DEEP',
  },
  { name: 'body an array', path: greet, body: '[1]', status: 400, errorCode: 'INVALID_INPUT' },
  { name: 'empty body', path: greet, body: '', status: 400, errorCode: 'INVALID_INPUT' },
  {
    name: 'unknown field',
    path: greet,
    body: '{"input":{"name":"a"},"headers":{}}',
    status: 400,
    errorCode: 'INVALID_INPUT',
  },
  {
    name: 'input against the schema',
    path: greet,
    body: '{"input":{"name":""}}',
    status: 400,
    errorCode: 'INVALID_INPUT',
  },
  {
    name: 'a key for a service',
    path: greet,
    body: '{"key":"k","input":{"name":"a"}}',
    status: 400,
    errorCode: 'INVALID_KEY',
  },
  {
    name: 'no key for an object',
    path: add,
    body: '{"input":1}',
    status: 400,
    errorCode: 'INVALID_KEY',
  },
  {
    name: 'a number as key',
    path: add,
    body: '{"key":7,"input":1}',
    status: 400,
    errorCode: 'INVALID_KEY',
  },
  {
    name: 'a key with control characters',
    path: add,
    body: '{"key":"a\\u0000b","input":1}',
    status: 400,
    errorCode: 'INVALID_KEY',
  },
  {
    name: 'an empty idempotency key',
    path: add,
    body: '{"key":"k","input":1,"idempotencyKey":""}',
    status: 400,
    errorCode: 'INVALID_IDEMPOTENCY_KEY',
  },
  {
    name: 'a malformed delay',
    path: add,
    body: '{"key":"k","input":1,"delay":"soon"}',
    status: 400,
    errorCode: 'INVALID_DELAY',
  },
  {
    name: 'a delay of the wrong type',
    path: add,
    body: '{"key":"k","input":1,"delay":{}}',
    status: 400,
    errorCode: 'INVALID_DELAY',
  },
  {
    name: 'a body over 1 MiB',
    path: add,
    body: `{"key":"k","input":"${'x'.repeat(1024 * 1024 + 1)}"}`,
    status: 413,
    errorCode: 'BODY_TOO_LARGE',
  },
];

describe('POST /services/{service}/handlers/{handler}/invoke', () => {
  const prefix = newPrefix();
  let server: Awaited<ReturnType<typeof startAdminServer>>;
  let redis: RawRedis;
  beforeAll(async () => {
    // A stalled-job check period longer than the file: BullMQ's periodic stalled-check marker
    // would otherwise come and go under the prefix between a request's two keyspace snapshots.
    server = await startAdminServer(redisTarget, prefix, [...uiServices, hidden], {
      token: TOKEN,
      store: { stalledIntervalMs: 600_000 },
    });
    redis = rawClient(redisTarget);
    // A first invocation, so the mailbox's keys exist before the rows compare keyspaces.
    expect((await post(server.url, '/ui_counter/warm/add', 1)).status).toBe(200);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('starts the invocation and answers 202 with its id', async () => {
    const r = await admin<{ invocationId: string; status: string }>(server.adminUrl, 'POST', add, {
      token: TOKEN,
      body: { key: 'k1', input: 5 },
    });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('Accepted');
    expect(r.body.invocationId).toMatch(/^inv_/);
    const done = await until('the invoked handler to complete', async () => {
      const d = await admin<{ status: string; outcome?: { ok: boolean; value?: unknown } }>(
        server.adminUrl,
        'GET',
        `/invocations/${r.body.invocationId}`,
        { token: TOKEN },
      );
      return d.body.status === 'completed' ? d.body : undefined;
    });
    expect(done.outcome?.ok).toBe(true);
    expect((await post(server.url, '/ui_counter/k1/get', undefined)).body).toBe(5);
  });

  it('latches on to the first invocation for the same idempotency key', async () => {
    const body = { input: { name: 'Ada' }, idempotencyKey: 'once' };
    const first = await admin<{ invocationId: string; status: string }>(
      server.adminUrl,
      'POST',
      greet,
      { token: TOKEN, body },
    );
    const again = await admin<{ invocationId: string; status: string }>(
      server.adminUrl,
      'POST',
      greet,
      { token: TOKEN, body },
    );
    expect(first.status).toBe(202);
    expect(again.body).toEqual({
      invocationId: first.body.invocationId,
      status: 'PreviouslyAccepted',
    });
  });

  for (const row of rows) {
    it(`${row.name} -> ${row.status} ${row.errorCode}, nothing changed`, async () => {
      const before = await settledKeyspace(redis, prefix);
      const res = await fetch(`${server.adminUrl}${row.path}`, {
        method: 'POST',
        headers: row.headers ?? { ...AUTH, ...JSON_TYPE },
        body: row.body ?? '',
      });
      const text = await res.text();
      expect(res.status).toBe(row.status);
      const body = JSON.parse(text) as { errorCode: string; message: string };
      expect(body.errorCode).toBe(row.errorCode);
      expect(typeof body.message).toBe('string');
      expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
    });
  }
});
