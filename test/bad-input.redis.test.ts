/**
 * Bad input gets a clear error and changes nothing (DESIGN §2.11). Every row
 * sends one bad request over HTTP or the WebSocket and checks the precise
 * error (status, errorCode, message), that Redis holds exactly the keys (and
 * values) it held before — every key under the test prefix, BullMQ's included —
 * and that the server still serves a good call afterwards.
 *
 * Also: `__proto__`/`constructor` payloads reach handlers as plain data without
 * prototype pollution, and an idempotency key reused with a different body
 * latches on to the first invocation.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import {
  handlers,
  object,
  service,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { deletePrefix, newPrefix, startServer } from './helpers/harness.js';
import { FrameSocket as Socket, type Frame } from './helpers/frames.js';
import { settledKeyspace, snapshotKeyspace } from './helpers/keyspace.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');

/** What a handler observed about its input (computed in the server process). */
interface Inspection {
  json: string;
  ownKeys: string[];
  plainPrototype: boolean;
  /** Values read through ordinary property access: own data, never a prototype's. */
  inheritedPolluted: unknown;
  globalPolluted: unknown;
}

function inspect(input: unknown): Inspection {
  const o = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  return {
    json: JSON.stringify(input),
    ownKeys: Reflect.ownKeys(o).map(String),
    plainPrototype: Object.getPrototypeOf(o) === Object.prototype,
    inheritedPolluted: o['polluted'] ?? null,
    globalPolluted: ({} as Record<string, unknown>)['polluted'] ?? null,
  };
}

const runs = new Map<string, number>();

const echo = service({
  name: 'bi_echo',
  handlers: {
    echo: async (_ctx: Context, input: unknown) => input,
    inspect: async (_ctx: Context, input: unknown) => inspect(input),
    /** Counts how often it ran per tag (idempotency checks). */
    count: async (ctx: Context, input: { tag: string; body: string }) => {
      const n = await ctx.run('count', () => {
        runs.set(input.tag, (runs.get(input.tag) ?? 0) + 1);
        return runs.get(input.tag)!;
      });
      return { body: input.body, n };
    },
  },
});

const person = service({
  name: 'bi_person',
  handlers: {
    register: handlers.handler(
      { input: z.object({ name: z.string().min(1), age: z.number().int().nonnegative() }) },
      async (_ctx: Context, p: { name: string; age: number }) => `${p.name} (${p.age})`,
    ),
    /** A schema that keeps unknown keys: `__proto__` must not reach a prototype through it either. */
    loose: handlers.handler(
      { input: z.looseObject({ name: z.string() }) },
      async (_ctx: Context, p: unknown) => inspect(p),
    ),
  },
});

const box = object({
  name: 'bi_box',
  handlers: {
    put: async (ctx: ObjectContext, v: unknown) => {
      ctx.set('v', v);
      return ctx.key;
    },
    get: handlers.object.shared(async (ctx: ObjectSharedContext) => {
      const v = await ctx.get<unknown>('v');
      return v === null || v === undefined ? null : inspect(v);
    }),
  },
});

/** An object with a handler named `run`: still not a workflow. */
const runner = object({
  name: 'bi_runner',
  handlers: { run: async (_ctx: ObjectContext) => 'ran' },
});

// ------------------------------------------------------------------ HTTP / WS clients

interface HttpAnswer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function http(
  base: string,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

const json = (
  base: string,
  path: string,
  value: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> =>
  http(base, 'POST', path, JSON.stringify(value), {
    'content-type': 'application/json',
    ...headers,
  });

/**
 * A POST with `headers` whose body `send` writes, resolving with the answer. A server that refuses
 * the body answers early and may then drop the connection, so write errors after the answer are
 * expected and ignored.
 */
function rawPost(
  base: string,
  path: string,
  headers: Record<string, string>,
  send: (req: ClientRequest) => void,
): Promise<HttpAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: 'POST', headers },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text === '' ? undefined : JSON.parse(text),
            headers: new Headers(),
          });
          req.destroy();
        });
        res.on('error', reject);
      },
    );
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    send(req);
  });
}

/** A POST that declares `contentLength` body bytes and sends none: answered only if the server checks the header first. */
function declareHugeBody(base: string, path: string, contentLength: number): Promise<HttpAnswer> {
  return rawPost(
    base,
    path,
    { 'content-type': 'application/json', 'content-length': String(contentLength) },
    (req) => req.flushHeaders(),
  );
}

/** Streams `bytes` of a JSON string body without a Content-Length (chunked), as fast as the socket takes it. */
function streamHugeBody(base: string, path: string, bytes: number): Promise<HttpAnswer> {
  return rawPost(base, path, { 'content-type': 'application/json' }, (req) => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes && !req.destroyed) {
        sent += chunk.length;
        if (
          !req.write(
            sent === chunk.length ? Buffer.concat([Buffer.from('"'), chunk.subarray(1)]) : chunk,
          )
        ) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/** A valid invocation id and awakeable id of invocations that do not exist. */
const MISSING_INVOCATION = 'inv_00AAAAAAAAAAAAAAAAAAAA';
const MISSING_AWAKEABLE = `sign_1${Buffer.from(`${MISSING_INVOCATION}:1`).toString('base64url')}`;
const LONG_KEY = 'k'.repeat(1025);

// ------------------------------------------------------------------ the tables

interface Expected {
  status: number;
  errorCode: string;
  message: string | RegExp;
  /** Further fields the error body must contain. */
  extra?: Record<string, unknown>;
}

interface HttpRow extends Expected {
  name: string;
  send: (base: string) => Promise<HttpAnswer>;
}

const httpRows: HttpRow[] = [
  {
    name: 'malformed JSON',
    send: (b) =>
      http(b, 'POST', '/bi_echo/echo', '{"name": "Ada",', { 'content-type': 'application/json' }),
    status: 400,
    errorCode: 'INVALID_JSON',
    message: /^Failed to deserialize input: .+/,
    extra: { source: 'invocation' },
  },
  {
    name: 'wrong content type (text/plain)',
    send: (b) => http(b, 'POST', '/bi_echo/echo', 'hello', { 'content-type': 'text/plain' }),
    status: 415,
    errorCode: 'UNSUPPORTED_CONTENT_TYPE',
    message: 'content-type text/plain is not supported; send application/json',
  },
  {
    name: 'schema-invalid payload (zod)',
    send: (b) => json(b, '/bi_person/register', { name: '', age: 1.5 }),
    status: 400,
    errorCode: 'INVALID_INPUT',
    message: /^invalid payload: name: .+; age: .+/,
    extra: {
      issues: [
        expect.objectContaining({ path: ['name'], code: 'too_small', message: expect.any(String) }),
        expect.objectContaining({
          path: ['age'],
          code: 'invalid_type',
          message: expect.any(String),
        }),
      ],
    },
  },
  {
    name: 'schema-invalid payload (wrong type at the root)',
    send: (b) => json(b, '/bi_person/register', 'Ada'),
    status: 400,
    errorCode: 'INVALID_INPUT',
    message: /^invalid payload: \(root\): .+/,
    extra: { issues: [expect.objectContaining({ path: [], code: 'invalid_type' })] },
  },
  {
    name: 'oversize body (declared Content-Length, refused before reading it)',
    send: (b) => declareHugeBody(b, '/bi_echo/echo', 1024 * 1024 * 1024),
    status: 413,
    errorCode: 'BODY_TOO_LARGE',
    message: `request body of ${1024 * 1024 * 1024} bytes exceeds the limit of ${10 * 1024 * 1024}`,
  },
  {
    name: 'oversize body without Content-Length (chunked, refused once the bytes read pass the limit)',
    send: (b) => streamHugeBody(b, '/bi_echo/echo', 64 * 1024 * 1024),
    status: 413,
    errorCode: 'BODY_TOO_LARGE',
    message: `request body exceeds the limit of ${10 * 1024 * 1024} bytes`,
  },
  {
    name: 'empty object key (path /bi_box//put)',
    send: (b) => json(b, '/bi_box//put', 1),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: 'use /bi_box/{key}/{handler}',
  },
  {
    name: 'object key over 1024 characters',
    send: (b) => json(b, `/bi_box/${LONG_KEY}/put`, 1),
    status: 400,
    errorCode: 'INVALID_KEY',
    message: 'the key is longer than 1024 characters',
  },
  ...[
    ['NUL', '%00'],
    ['newline', 'a%0Ab'],
    ['ESC', '%1B%5B31m'],
    ['DEL', 'x%7F'],
  ].map(([what, enc]): HttpRow => ({
    name: `object key with a control character (${what})`,
    send: (b) => json(b, `/bi_box/${enc}/put`, 1),
    status: 400,
    errorCode: 'INVALID_KEY',
    message: 'the key contains control characters',
  })),
  {
    name: 'object key with malformed percent-encoding',
    send: (b) => json(b, '/bi_box/%E0%A4%A/put', 1),
    status: 400,
    errorCode: 'INVALID_PATH',
    message: 'malformed percent-encoding in "%E0%A4%A"',
  },
  {
    name: 'unknown service',
    send: (b) => json(b, '/bi_nope/echo', 1),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: "service 'bi_nope' not found",
  },
  {
    name: 'unknown handler',
    send: (b) => json(b, '/bi_echo/nope', 1),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: "handler 'bi_echo/nope' not found",
  },
  {
    name: 'unknown handler (/restate/send form)',
    send: (b) => json(b, '/restate/send/bi_box/k/nope', 1),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: "handler 'bi_box/nope' not found",
  },
  {
    name: 'GET on a handler path',
    send: (b) => http(b, 'GET', '/bi_echo/echo'),
    status: 405,
    errorCode: 'METHOD_NOT_ALLOWED',
    message: 'GET is not allowed here',
  },
  {
    name: 'unparsable ?delay= on a send',
    send: (b) => json(b, '/bi_echo/echo/send?delay=soon', 1),
    status: 400,
    errorCode: 'INVALID_DELAY',
    message: 'invalid delay "soon": use milliseconds, 10s-style or ISO 8601 (PT10S)',
  },
  {
    name: '?delay= on a call (not a send)',
    send: (b) => json(b, '/bi_echo/echo?delay=10s', 1),
    status: 400,
    errorCode: 'INVALID_DELAY',
    message: 'delay is only allowed on sends',
  },
  {
    name: 'idempotency key over 1024 characters',
    send: (b) => json(b, '/bi_echo/echo', 1, { 'idempotency-key': 'i'.repeat(1025) }),
    status: 400,
    errorCode: 'INVALID_IDEMPOTENCY_KEY',
    message: 'the idempotency key must be 1 to 1024 characters',
  },
  {
    name: 'attach to an invocation id that does not exist',
    send: (b) => http(b, 'GET', `/restate/invocation/${MISSING_INVOCATION}/attach`),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: `invocation ${MISSING_INVOCATION} not found`,
  },
  {
    name: 'output of a malformed invocation id',
    send: (b) => http(b, 'GET', '/restate/invocation/not-an-id/output'),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: 'invocation not-an-id not found',
  },
  {
    name: 'resolve a malformed awakeable id',
    send: (b) => json(b, '/restate/awakeables/not-an-id/resolve', 'v'),
    status: 400,
    errorCode: 'INVALID_AWAKEABLE_ID',
    message: 'malformed awakeable id "not-an-id"',
  },
  {
    name: 'resolve an awakeable of an invocation that does not exist',
    send: (b) => json(b, `/restate/awakeables/${MISSING_AWAKEABLE}/resolve`, 'v'),
    status: 404,
    errorCode: 'NOT_FOUND',
    message: `awakeable ${MISSING_AWAKEABLE} not found or already completed`,
  },
  {
    name: 'resolve an awakeable with malformed JSON',
    send: (b) =>
      http(b, 'POST', `/restate/awakeables/${MISSING_AWAKEABLE}/resolve`, '{nope', {
        'content-type': 'application/json',
      }),
    status: 400,
    errorCode: 'INVALID_JSON',
    message: /^Failed to deserialize input: .+/,
  },
];

interface WsRow {
  name: string;
  /** What to send: a frame object, or raw text/binary. */
  send: Frame | string | Buffer;
  /** The error frame expected (`id` absent when the request had none). */
  error?: Expected & { id?: string };
  /** The close code expected instead of an error frame. */
  close?: number;
}

const call = (id: string, fields: Frame): Frame => ({ id, type: 'call', ...fields });

const wsRows: WsRow[] = [
  {
    name: 'oversize frame (> 1 MiB)',
    send: JSON.stringify({
      id: 'big',
      type: 'call',
      service: 'bi_echo',
      handler: 'echo',
      input: 'x'.repeat(1024 * 1024),
    }),
    close: 1009,
  },
  {
    name: 'non-JSON frame',
    send: 'not json {',
    error: { status: 400, errorCode: 'INVALID_JSON', message: /^invalid JSON: .+/ },
  },
  {
    name: 'unknown frame type',
    send: { id: 'u1', type: 'launch' },
    error: {
      id: 'u1',
      status: 400,
      errorCode: 'UNKNOWN_TYPE',
      message: 'unknown frame type "launch"',
    },
  },
  {
    name: 'binary frame',
    send: Buffer.from(
      JSON.stringify(call('b1', { service: 'bi_echo', handler: 'echo', input: 1 })),
    ),
    error: {
      status: 400,
      errorCode: 'INVALID_FRAME',
      message: 'binary frames are not supported; send JSON text',
    },
  },
  {
    name: 'JSON that is not an object',
    send: '[1,2,3]',
    error: { status: 400, errorCode: 'INVALID_FRAME', message: 'a frame must be a JSON object' },
  },
  {
    name: 'frame without an id',
    send: { type: 'call', service: 'bi_echo', handler: 'echo', input: 1 },
    error: {
      status: 400,
      errorCode: 'INVALID_FRAME',
      message: 'every request needs an id: a string of 1 to 128 characters',
    },
  },
  {
    name: 'frame whose type and target hide in __proto__',
    send: '{"id":"p1","__proto__":{"type":"call","service":"bi_echo","handler":"echo","input":1}}',
    error: {
      id: 'p1',
      status: 400,
      errorCode: 'UNKNOWN_TYPE',
      message: 'unknown frame type undefined',
    },
  },
  {
    name: 'empty object key',
    send: call('k1', { service: 'bi_box', handler: 'put', key: '', input: 1 }),
    error: {
      id: 'k1',
      status: 400,
      errorCode: 'INVALID_KEY',
      message: 'the key must not be empty',
    },
  },
  {
    name: 'object key over 1024 characters',
    send: call('k2', { service: 'bi_box', handler: 'put', key: LONG_KEY, input: 1 }),
    error: {
      id: 'k2',
      status: 400,
      errorCode: 'INVALID_KEY',
      message: 'the key is longer than 1024 characters',
    },
  },
  ...[
    ['NUL', 'a\u0000b'],
    ['ESC', '\u001b[31m'],
    ['DEL', 'x\u007f'],
  ].map(([what, key]): WsRow => ({
    name: `object key with a control character (${what})`,
    send: call('k3', { service: 'bi_box', handler: 'put', key, input: 1 }),
    error: {
      id: 'k3',
      status: 400,
      errorCode: 'INVALID_KEY',
      message: 'the key contains control characters',
    },
  })),
  {
    name: 'object call without a key',
    send: call('k4', { service: 'bi_box', handler: 'put', input: 1 }),
    error: {
      id: 'k4',
      status: 400,
      errorCode: 'INVALID_KEY',
      message: "'bi_box' needs a string key",
    },
  },
  {
    name: 'service call with a key',
    send: call('k5', { service: 'bi_echo', handler: 'echo', key: 'k', input: 1 }),
    error: {
      id: 'k5',
      status: 400,
      errorCode: 'INVALID_KEY',
      message: "service 'bi_echo' takes no key",
    },
  },
  {
    name: 'schema-invalid payload (zod)',
    send: call('z1', {
      service: 'bi_person',
      handler: 'register',
      input: { name: 'Ada', age: -1 },
    }),
    error: {
      id: 'z1',
      status: 400,
      errorCode: 'INVALID_INPUT',
      message: /^invalid payload: age: .+/,
      extra: { issues: [expect.objectContaining({ path: ['age'], code: 'too_small' })] },
    },
  },
  {
    name: 'unknown service',
    send: call('n1', { service: 'bi_nope', handler: 'echo', input: 1 }),
    error: {
      id: 'n1',
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "service 'bi_nope' not found",
    },
  },
  {
    name: 'unknown handler',
    send: { id: 'n2', type: 'send', service: 'bi_echo', handler: 'nope', input: 1 },
    error: {
      id: 'n2',
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "handler 'bi_echo/nope' not found",
    },
  },
  {
    name: 'submit of an object that has a run handler (not a workflow)',
    send: { id: 'w1', type: 'submit', workflow: 'bi_runner', key: 'k', input: 1 },
    error: {
      id: 'w1',
      status: 400,
      errorCode: 'INVALID_FRAME',
      message: "'bi_runner' is not a workflow",
    },
  },
  {
    name: 'submit of an object without a run handler',
    send: { id: 'w2', type: 'submit', workflow: 'bi_box', key: 'k', input: 1 },
    error: {
      id: 'w2',
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "handler 'bi_box/run' not found",
    },
  },
  {
    name: 'non-string idempotency key',
    send: call('i1', { service: 'bi_echo', handler: 'echo', input: 1, idempotencyKey: 42 }),
    error: {
      id: 'i1',
      status: 400,
      errorCode: 'INVALID_IDEMPOTENCY_KEY',
      message: 'idempotencyKey must be a string',
    },
  },
  {
    name: 'unparsable delay on a send',
    send: { id: 'd1', type: 'send', service: 'bi_echo', handler: 'echo', input: 1, delay: 'soon' },
    error: {
      id: 'd1',
      status: 400,
      errorCode: 'INVALID_DELAY',
      message: 'invalid delay "soon": use milliseconds, 10s-style or ISO 8601 (PT10S)',
    },
  },
  {
    name: 'resolve an awakeable of an invocation that does not exist',
    send: { id: 'a1', type: 'resolveAwakeable', awakeableId: MISSING_AWAKEABLE, value: 1 },
    error: {
      id: 'a1',
      status: 404,
      errorCode: 'NOT_FOUND',
      message: `awakeable ${MISSING_AWAKEABLE} not found or already completed`,
    },
  },
  {
    name: 'attach to an invocation id that does not exist',
    send: { id: 'x1', type: 'attach', invocationId: MISSING_INVOCATION },
    error: { id: 'x1', status: 404, errorCode: 'NOT_FOUND', message: 'no such invocation' },
  },
];

function expectError(body: unknown, e: Expected): void {
  expect(body).toMatchObject({
    code: e.status,
    errorCode: e.errorCode,
    message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message),
    ...e.extra,
  });
}

// ------------------------------------------------------------------ the tests

describe('bad input gets a precise error and changes nothing', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let redis: RawRedis;
  const sockets: Socket[] = [];
  let goodCalls = 0;

  /** A good call succeeds (over HTTP, or on `socket` when given). */
  async function expectHealthy(socket?: Socket): Promise<void> {
    const value = `still fine ${++goodCalls}`;
    if (socket) {
      const id = `good-${goodCalls}`;
      socket.send(call(id, { service: 'bi_echo', handler: 'echo', input: value }));
      const res = await socket.next('good result', (f) => f['id'] === id && f['type'] === 'result');
      expect(res).toMatchObject({ ok: true, value });
      return;
    }
    const res = await json(server.url, '/bi_echo/echo', value);
    expect(res).toMatchObject({ status: 200, body: value });
  }

  beforeAll(async () => {
    // A stalled-job check period longer than the file: BullMQ's periodic stalled-check marker
    // would otherwise come and go under the prefix on its own.
    server = await startServer(redisTarget, prefix, [echo, person, box, runner], {
      store: { stalledIntervalMs: 600_000 },
    });
    redis = rawClient(redisTarget);
    await expectHealthy();
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });
  afterAll(async () => {
    for (const s of sockets.splice(0)) s.close();
    await server?.close();
    redis?.disconnect();
    await deletePrefix(redisTarget, prefix);
  });

  describe('HTTP', () => {
    for (const row of httpRows) {
      it(`${row.name} -> ${row.status} ${row.errorCode}`, async () => {
        const before = await settledKeyspace(redis, prefix);
        expect(Object.keys(before).some((k) => k.includes(':jobs:'))).toBe(true);
        const res = await row.send(server.url);
        expect(res.status).toBe(row.status);
        expectError(res.body, row);
        expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
        await expectHealthy();
      });
    }
  });

  describe('WebSocket', () => {
    for (const row of wsRows) {
      const outcome =
        row.close !== undefined
          ? `closes ${row.close}`
          : `${row.error!.status} ${row.error!.errorCode}`;
      it(`${row.name} -> ${outcome}`, async () => {
        const socket = await Socket.open(server.url);
        sockets.push(socket);
        const before = await settledKeyspace(redis, prefix);
        socket.send(row.send);
        if (row.close !== undefined) {
          const closed = await socket.closed;
          expect(closed.code).toBe(row.close);
          expect(socket.frames).toEqual([]);
          expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
          const fresh = await Socket.open(server.url);
          sockets.push(fresh);
          await expectHealthy(fresh);
          return;
        }
        const e = row.error!;
        const frame = await socket.next('error', (f) => f['type'] === 'error');
        expect(socket.frames).toHaveLength(1);
        if (e.id === undefined) expect(frame).not.toHaveProperty('id');
        else expect(frame['id']).toBe(e.id);
        expectError(frame, e);
        expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
        // The same socket carries on.
        await expectHealthy(socket);
      });
    }
  });

  describe('__proto__ / constructor payloads are plain data', () => {
    const payload =
      '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"nested":{"__proto__":{"polluted":"yes"},"ok":1}}';
    const expectNoPollution = (): void => {
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    };
    const expectPlain = (seen: Inspection): void => {
      expect(seen.plainPrototype).toBe(true);
      expect(seen.inheritedPolluted).toBeNull();
      expect(seen.globalPolluted).toBeNull();
    };

    afterEach(expectNoPollution);

    it('over HTTP: the handler sees exactly the JSON it was sent, with own __proto__/constructor keys', async () => {
      const res = await http(server.url, 'POST', '/bi_echo/inspect', payload, {
        'content-type': 'application/json',
      });
      expect(res.status).toBe(200);
      const seen = res.body as Inspection;
      expectPlain(seen);
      expect(seen.ownKeys).toEqual(['__proto__', 'constructor', 'nested']);
      expect(JSON.parse(seen.json)).toEqual(JSON.parse(payload));
      expect(seen.json).toBe(payload);
    });

    it('over the WebSocket: the handler sees exactly the JSON it was sent', async () => {
      const socket = await Socket.open(server.url);
      sockets.push(socket);
      socket.send(
        `{"id":"pp","type":"call","service":"bi_echo","handler":"inspect","input":${payload}}`,
      );
      const res = await socket.next('result', (f) => f['id'] === 'pp' && f['type'] === 'result');
      expect(res['ok']).toBe(true);
      const seen = res['value'] as Inspection;
      expectPlain(seen);
      expect(seen.ownKeys).toEqual(['__proto__', 'constructor', 'nested']);
      expect(seen.json).toBe(payload);
    });

    it('through a zod schema that keeps unknown keys: no pollution, a plain object', async () => {
      const res = await http(
        server.url,
        'POST',
        '/bi_person/loose',
        '{"name":"Ada","__proto__":{"polluted":"yes"},"constructor":{"polluted":"yes"}}',
        {
          'content-type': 'application/json',
        },
      );
      expect(res.status).toBe(200);
      const seen = res.body as Inspection;
      expectPlain(seen);
      expect(JSON.parse(seen.json)).toMatchObject({
        name: 'Ada',
        constructor: { polluted: 'yes' },
      });
    });

    it('stored as object state and read back by a shared handler: plain data, keys __proto__ and constructor are ordinary keys', async () => {
      for (const key of ['__proto__', 'constructor']) {
        const put = await http(server.url, 'POST', `/bi_box/${key}/put`, payload, {
          'content-type': 'application/json',
        });
        expect(put).toMatchObject({ status: 200, body: key });
      }
      for (const key of ['__proto__', 'constructor']) {
        const got = await json(server.url, `/bi_box/${key}/get`, undefined);
        expect(got.status).toBe(200);
        const seen = got.body as Inspection;
        expectPlain(seen);
        expect(seen.json).toBe(payload);
      }
      // A key that never got state has none: the two keys did not alias anything.
      expect(await json(server.url, '/bi_box/prototype/get', undefined)).toMatchObject({
        status: 200,
        body: null,
      });
    });
  });

  describe('idempotency keys', () => {
    it('a key reused with a different body latches on to the first invocation (HTTP call, HTTP send, WS call)', async () => {
      const idem = { 'idempotency-key': 'reused-key' };
      const first = await json(server.url, '/bi_echo/count', { tag: 'reuse', body: 'first' }, idem);
      expect(first).toMatchObject({ status: 200, body: { body: 'first', n: 1 } });
      const id = first.headers.get('x-restate-id');
      expect(id).toMatch(/^inv_/);

      const second = await json(
        server.url,
        '/bi_echo/count',
        { tag: 'reuse', body: 'second' },
        idem,
      );
      expect(second).toMatchObject({ status: 200, body: { body: 'first', n: 1 } });
      expect(second.headers.get('x-restate-id')).toBe(id);

      const sent = await json(
        server.url,
        '/bi_echo/count/send',
        { tag: 'reuse', body: 'third' },
        idem,
      );
      expect(sent).toMatchObject({
        status: 202,
        body: { invocationId: id, status: 'PreviouslyAccepted' },
      });

      const socket = await Socket.open(server.url);
      sockets.push(socket);
      socket.send(
        call('r1', {
          service: 'bi_echo',
          handler: 'count',
          input: { tag: 'reuse', body: 'fourth' },
          idempotencyKey: 'reused-key',
        }),
      );
      const accepted = await socket.next(
        'accepted',
        (f) => f['id'] === 'r1' && f['type'] === 'accepted',
      );
      expect(accepted).toMatchObject({ invocationId: id, status: 'PreviouslyAccepted' });
      const result = await socket.next('result', (f) => f['id'] === 'r1' && f['type'] === 'result');
      expect(result).toMatchObject({ invocationId: id, ok: true, value: { body: 'first', n: 1 } });

      const attached = await http(
        server.url,
        'GET',
        `/restate/invocation/bi_echo/count/reused-key/output`,
      );
      expect(attached).toMatchObject({ status: 200, body: { body: 'first', n: 1 } });
      expect(runs.get('reuse')).toBe(1);
    });

    it('the same idempotency key on another handler or object key is another invocation', async () => {
      const idem = { 'idempotency-key': 'scoped-key' };
      const a = await json(server.url, '/bi_box/a/put', 'A', idem);
      const b = await json(server.url, '/bi_box/b/put', 'B', idem);
      const c = await json(server.url, '/bi_echo/echo', 'C', idem);
      expect([a.body, b.body, c.body]).toEqual(['a', 'b', 'C']);
      const ids = [a, b, c].map((r) => r.headers.get('x-restate-id'));
      expect(new Set(ids).size).toBe(3);
    });
  });

  it('keys of exactly 1024 characters are accepted (the limit is inclusive)', async () => {
    const key = 'k'.repeat(1024);
    expect(await json(server.url, `/bi_box/${key}/put`, 1)).toMatchObject({
      status: 200,
      body: key,
    });
    const socket = await Socket.open(server.url);
    sockets.push(socket);
    socket.send(call('max', { service: 'bi_box', handler: 'put', key, input: 2 }));
    expect(
      await socket.next('result', (f) => f['id'] === 'max' && f['type'] === 'result'),
    ).toMatchObject({ ok: true, value: key });
    const got = await json(server.url, `/bi_box/${key}/get`, undefined);
    expect((got.body as Inspection).json).toBe('2');
  });
});
