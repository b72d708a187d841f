/**
 * Security: malformed input and limits, on the public HTTP ingress, its WebSocket and the admin
 * API. Every refusal row checks the precise error (status, errorCode, message), that Redis holds
 * exactly the keys (and values) it held before — every key under the server's prefix, BullMQ's
 * included — and that the server still serves a good call afterwards. No row may get a 500.
 *
 * Rows that are accepted (a limit's boundary, a redacted request) or that are not about the
 * keyspace (the admin's refusal to start, the default host) check what applies to them.
 *
 * Servers: `main` (default limits, `redactHeaders: ['x-api-key']`, admin API with a token),
 * `small` (tight limits: JSON depth 8, delay 1 s, body timeout 500 ms, an origin allow-list,
 * 5 open requests and 2 subscriptions per socket, handlers always suspend), `wide` (1 MiB for
 * all unfinished bodies together, any origin).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, createServer as createTcpServer, type Socket as NetSocket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import {
  handlers,
  object,
  serve,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import {
  FAST_TIMINGS,
  deletePrefix,
  newPrefix,
  quietLogger,
  startServer,
  until,
} from './helpers/harness.js';
import { FrameSocket as Socket, type Frame } from './helpers/frames.js';
import { settledKeyspace, snapshotKeyspace } from './helpers/keyspace.js';
import { keysOnMasters, rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 't0ken';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const YEAR_MS = 365 * 86_400_000;

// ------------------------------------------------------------------ services

const echo = service({
  name: 'sec_echo',
  handlers: {
    echo: async (_ctx: Context, input: unknown) => input,
    /** The names of the request headers the handler sees. */
    headerKeys: async (ctx: Context) => [...ctx.request().headers.keys()],
  },
});

const box = object({
  name: 'sec_box',
  handlers: {
    put: async (ctx: ObjectContext, v: unknown) => {
      ctx.set('v', v);
      return ctx.key;
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<unknown>('v')) ?? null,
    ),
  },
});

/** Waits for its durable promise `go`, resolved by `release`. */
const gate = workflow({
  name: 'sec_gate',
  handlers: {
    run: async (ctx: WorkflowContext) => `went:${await ctx.promise<string>('go').get()}`,
    release: handlers.workflow.shared(async (ctx: WorkflowSharedContext, v: string) => {
      await ctx.promise<string>('go').resolve(v);
      return 'released';
    }),
  },
});

const SERVICES = [echo, box, gate];

// ------------------------------------------------------------------ HTTP clients

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

function parseBody(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return text;
  }
}

/**
 * One HTTP request with node:http (no header added: no content-type unless given), on a fresh
 * connection.
 */
function http(
  base: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            body: parseBody(text),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const post = (
  base: string,
  path: string,
  text: string,
  headers: Record<string, string> = {},
): Promise<Answer> =>
  http(base, 'POST', path, text, { 'content-type': 'application/json', ...headers });

/** A connection speaking raw HTTP/1.1 bytes, reading one answer. */
class RawConn {
  readonly socket: NetSocket;
  /** The first answer (status line, headers, body by Content-Length). */
  readonly answer: Promise<Answer>;
  /** Resolves when the server ended or closed the connection. */
  readonly ended: Promise<void>;
  answered: Answer | undefined;
  private constructor(socket: NetSocket) {
    this.socket = socket;
    let buf = Buffer.alloc(0);
    this.answer = new Promise<Answer>((resolve, reject) => {
      const tryParse = (final: boolean): void => {
        if (this.answered) return;
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (final)
            reject(
              new Error(
                `connection closed without an answer: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`,
              ),
            );
          return;
        }
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const rest = buf.subarray(end + 4);
        const length =
          headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
        if (length !== undefined ? rest.length < length : !final) {
          if (final)
            reject(new Error(`connection closed in the middle of an answer (status ${status})`));
          return;
        }
        const text = rest.subarray(0, length ?? rest.length).toString('utf8');
        this.answered = { status, headers, text, body: parseBody(text) };
        resolve(this.answered);
      };
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        tryParse(false);
      });
      socket.once('close', () => tryParse(true));
    });
    this.answer.catch(() => undefined);
    this.ended = new Promise<void>((resolve) => {
      socket.once('end', () => resolve());
      socket.once('close', () => resolve());
    });
    socket.on('error', () => undefined);
  }
  static open(base: string): Promise<RawConn> {
    const url = new URL(base);
    return new Promise((resolve, reject) => {
      const s = connect(Number(url.port), url.hostname);
      s.once('connect', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }
  write(data: string | Buffer): void {
    this.socket.write(data);
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends raw request bytes on a fresh connection and reads the answer. */
async function raw(base: string, request: string): Promise<Answer> {
  const c = await RawConn.open(base);
  try {
    c.write(request);
    return await c.answer;
  } finally {
    c.destroy();
  }
}

// ------------------------------------------------------------------ WebSocket client

/** Opens a WebSocket upgrade and reports whether it was accepted, or the refusal's status and JSON body. */
function tryUpgrade(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ opened: true } | { opened: false; status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${path}`, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve({ opened: true });
    });
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          opened: false,
          status: res.statusCode ?? 0,
          body: parseBody(Buffer.concat(chunks).toString('utf8')),
        });
        req.destroy();
      });
      res.on('error', reject);
    });
    ws.on('error', (e) => reject(e));
  });
}

// ------------------------------------------------------------------ expectations

interface Expected {
  status: number;
  errorCode: string;
  message: string | RegExp;
  extra?: Record<string, unknown>;
}

/** Checks an error body (or WS error frame): never a 500, the exact code, errorCode and message. */
function expectError(status: number, body: unknown, e: Expected): void {
  expect(status, `an unexpected failure: ${JSON.stringify(body)}`).not.toBe(500);
  expect(status, JSON.stringify(body)).toBe(e.status);
  expect(body).toMatchObject({
    code: e.status,
    errorCode: e.errorCode,
    message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message),
    ...e.extra,
  });
}

const nest = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
const DEEP = nest(100_000);
const MISSING_INVOCATION = 'inv_00AAAAAAAAAAAAAAAAAAAA';
const MISSING_AWAKEABLE = `sign_1${Buffer.from(`${MISSING_INVOCATION}:1`).toString('base64url')}`;
const LONE_KEY = 'the key is not well-formed Unicode (a lone surrogate)';
const LONE_IDEM = 'the idempotency key is not well-formed Unicode (a lone surrogate)';
const LONE_NAME =
  'service, handler and workflow names must be strings of at most 1024 characters in well-formed Unicode';
const maxDelayMessage = (ms: number): string => `the delay exceeds the maximum of ${ms} ms`;

/** The listening sockets of a TCP port, from /proc/net/tcp{,6} (hex local address), or undefined off Linux. */
function listeners(port: number): { v4: string[]; v6: string[] } | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const read = (file: string): string[] | undefined => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    return text
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((cols) => cols[3] === '0A' && cols[1]?.endsWith(`:${hexPort}`))
      .map((cols) => cols[1]!.split(':')[0]!);
  };
  const v4 = read('/proc/net/tcp');
  if (v4 === undefined) return undefined;
  return { v4, v6: read('/proc/net/tcp6') ?? [] };
}

/** A port free at the time of asking. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// ------------------------------------------------------------------ the tests

type Name = 'main' | 'small' | 'wide';

describe('security: malformed input and limits', () => {
  const prefixes: Record<Name, string> = {
    main: newPrefix(),
    small: newPrefix(),
    wide: newPrefix(),
  };
  const servers = {} as Record<Name, LatchkeyServer>;
  let redis: RawRedis;
  const sockets: Socket[] = [];
  let good = 0;
  /** An invocation of `main` that exists (completed), for admin operations on it. */
  let existingId: string;

  const keyspace = (on: Name): Promise<Record<string, string>> =>
    settledKeyspace(redis, prefixes[on]);
  const snapshot = (on: Name): Promise<Record<string, string>> =>
    snapshotKeyspace(redis, prefixes[on]);

  /** A good call succeeds on server `on` (over HTTP, or on `socket` when given). */
  async function expectHealthy(on: Name, socket?: Socket): Promise<void> {
    const value = `still fine ${++good}`;
    if (socket) {
      const id = `good-${good}`;
      socket.send({ id, type: 'call', service: 'sec_echo', handler: 'echo', input: value });
      expect(
        await socket.next('good result', (f) => f['id'] === id && f['type'] === 'result'),
      ).toMatchObject({ ok: true, value });
      return;
    }
    const res = await post(servers[on].url, '/sec_echo/echo', JSON.stringify(value));
    expect(res).toMatchObject({ status: 200, body: value });
  }

  async function openSocket(on: Name): Promise<Socket> {
    const s = await Socket.open(servers[on].url);
    sockets.push(s);
    return s;
  }

  beforeAll(async () => {
    redis = rawClient(redisTarget);
    const store = { stalledIntervalMs: 600_000 };
    [servers.main, servers.small, servers.wide] = await Promise.all([
      startServer(redisTarget, prefixes.main, SERVICES, {
        store,
        serve: { redactHeaders: ['x-api-key'], admin: { port: 0, token: TOKEN } },
      }),
      startServer(redisTarget, prefixes.small, SERVICES, {
        store,
        serve: {
          maxJsonDepth: 8,
          maxDelay: 1000,
          bodyTimeout: 500,
          inactivityTimeout: 0,
          webSocket: {
            allowedOrigins: ['http://app.example'],
            maxOpenRequests: 5,
            maxSubscriptions: 2,
          },
        },
      }),
      startServer(redisTarget, prefixes.wide, SERVICES, {
        store,
        serve: { maxBufferedBodyBytes: 1024 * 1024, webSocket: { allowedOrigins: '*' } },
      }),
    ]);
    for (const on of ['main', 'small', 'wide'] as const) await expectHealthy(on);
    const first = await post(servers.main.url, '/sec_echo/echo', '"first"');
    existingId = String(first.headers['x-restate-id']);
    expect(existingId).toMatch(/^inv_/);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });
  afterAll(async () => {
    for (const s of sockets.splice(0)) s.close();
    await Promise.all(Object.values(servers).map((s) => s?.close()));
    redis?.disconnect();
    for (const p of Object.values(prefixes)) await deletePrefix(redisTarget, p);
  });

  // ---------------------------------------------------------------- HTTP ingress refusals

  interface HttpRow extends Expected {
    name: string;
    on?: Name;
    send: (base: string) => Promise<Answer>;
  }

  const httpRows: HttpRow[] = [
    {
      name: 'POST /restate/attach by workflow id whose key is a lone surrogate',
      send: (b) => post(b, '/restate/attach', '{"workflow":"sec_gate","key":"\\ud800"}'),
      status: 400,
      errorCode: 'INVALID_KEY',
      message: LONE_KEY,
    },
    {
      name: 'POST /restate/attach by idempotency key that is a lone surrogate',
      send: (b) =>
        post(
          b,
          '/restate/attach',
          '{"service":"sec_echo","handler":"echo","idempotencyKey":"\\ud800"}',
        ),
      status: 400,
      errorCode: 'INVALID_IDEMPOTENCY_KEY',
      message: LONE_IDEM,
    },
    ...[
      '{"workflow":"\\ud800","key":"k"}',
      '{"service":"\\ud800","handler":"echo","idempotencyKey":"k"}',
      '{"service":"sec_echo","handler":"\\udc00","idempotencyKey":"k"}',
    ].map((body): HttpRow => ({
      name: `POST /restate/output with a name that is a lone surrogate: ${body}`,
      send: (b) => post(b, '/restate/output', body),
      status: 400,
      errorCode: 'INVALID_REFERENCE',
      message: LONE_NAME,
    })),
    {
      name: 'JSON body nested 100,000 levels',
      send: (b) => post(b, '/sec_echo/echo', DEEP),
      status: 400,
      errorCode: 'JSON_TOO_DEEP',
      message: 'the JSON nests deeper than 64 levels',
      extra: { source: 'invocation' },
    },
    {
      name: 'JSON body nested 65 levels (one over the limit)',
      send: (b) => post(b, '/sec_echo/echo', nest(65)),
      status: 400,
      errorCode: 'JSON_TOO_DEEP',
      message: 'the JSON nests deeper than 64 levels',
    },
    {
      name: 'awakeable resolve body nested 100,000 levels',
      send: (b) => post(b, `/restate/awakeables/${MISSING_AWAKEABLE}/resolve`, DEEP),
      status: 400,
      errorCode: 'JSON_TOO_DEEP',
      message: 'the JSON nests deeper than 64 levels',
    },
    {
      name: 'server with maxJsonDepth 8: a body nested 9 levels',
      on: 'small',
      send: (b) => post(b, '/sec_echo/echo', nest(9)),
      status: 400,
      errorCode: 'JSON_TOO_DEEP',
      message: 'the JSON nests deeper than 8 levels',
    },
    {
      name: 'absolute-form request target the URL parser rejects (GET http://[, raw TCP)',
      send: (b) => raw(b, 'GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed request target',
    },
    {
      name: 'absolute-form request target the URL parser rejects, as a POST (raw TCP)',
      send: (b) =>
        raw(
          b,
          'POST http://[ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1',
        ),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed request target',
    },
    {
      name: 'object key with a bad percent escape (raw TCP)',
      send: (b) =>
        raw(
          b,
          'POST /sec_box/%E0%A4%A/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1',
        ),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed percent-encoding in "%E0%A4%A"',
    },
    {
      name: 'object key that decodes to a lone surrogate (%ED%A0%80)',
      send: (b) => post(b, '/sec_box/%ED%A0%80/put', '1'),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed percent-encoding in "%ED%A0%80"',
    },
    {
      name: 'send with ?delay=99999999999999999999999 (ms)',
      send: (b) => post(b, '/sec_echo/echo/send?delay=99999999999999999999999', '1'),
      status: 400,
      errorCode: 'INVALID_DELAY',
      message: maxDelayMessage(YEAR_MS),
    },
    {
      name: 'send with ?delay=P99999999D',
      send: (b) => post(b, '/sec_echo/echo/send?delay=P99999999D', '1'),
      status: 400,
      errorCode: 'INVALID_DELAY',
      message: maxDelayMessage(YEAR_MS),
    },
    {
      name: 'send with ?delay=366d',
      send: (b) => post(b, '/sec_echo/echo/send?delay=366d', '1'),
      status: 400,
      errorCode: 'INVALID_DELAY',
      message: maxDelayMessage(YEAR_MS),
    },
    {
      name: 'server with maxDelay 1000: send with ?delay=1001',
      on: 'small',
      send: (b) => post(b, '/sec_echo/echo/send?delay=1001', '1'),
      status: 400,
      errorCode: 'INVALID_DELAY',
      message: maxDelayMessage(1000),
    },
  ];

  describe('HTTP ingress refusals', () => {
    for (const row of httpRows) {
      const on = row.on ?? 'main';
      it(`${row.name} -> ${row.status} ${row.errorCode}`, async () => {
        const before = await keyspace(on);
        const res = await row.send(servers[on].url);
        expectError(res.status, res.body, row);
        expect(await snapshot(on)).toEqual(before);
        await expectHealthy(on);
      });
    }
  });

  describe('HTTP ingress: accepted at the limits', () => {
    it('a JSON body nested exactly 64 levels is accepted and echoed', async () => {
      const res = await post(servers.main.url, '/sec_echo/echo', nest(64));
      expect(res.status).toBe(200);
      expect(res.text).toBe(nest(64));
    });

    it('server with maxJsonDepth 8: exactly 8 levels are accepted, as an HTTP body and as a frame input', async () => {
      const res = await post(servers.small.url, '/sec_echo/echo', nest(8));
      expect(res.status).toBe(200);
      expect(res.text).toBe(nest(8));
      const socket = await openSocket('small');
      socket.send(
        `{"id":"eight","type":"call","service":"sec_echo","handler":"echo","input":${nest(8)}}`,
      );
      const result = await socket.next(
        'the result',
        (f) => f['id'] === 'eight' && f['type'] === 'result',
      );
      expect(result).toMatchObject({ ok: true, value: JSON.parse(nest(8)) as unknown });
    });

    it('server with maxDelay 1000: ?delay=1000 is accepted and the invocation runs', async () => {
      const res = await post(servers.small.url, '/sec_echo/echo/send?delay=1000', '"later"');
      expect(res).toMatchObject({ status: 202, body: { status: 'Accepted' } });
      const id = (res.body as { invocationId: string }).invocationId;
      const done = await until('the delayed invocation to complete', async () => {
        const info = await servers.small.store.describe(id);
        return info?.status === 'completed' ? info : undefined;
      });
      expect(done.outcome).toEqual({ ok: true, value: '"later"' });
    });
  });

  describe('credentials are never persisted', () => {
    const secrets = {
      authorization: 'Bearer s3cret-bearer',
      cookie: 'session=s3cret-cookie',
      'proxy-authorization': 'Basic s3cret-proxy',
      'x-api-key': 's3cret-api-key',
    };

    /** The stored headers JSON (field `hdr`) of an invocation of `main`. */
    async function storedHeaders(id: string): Promise<string> {
      const keys = await keysOnMasters(redis, `${prefixes.main}:*:inv:${id}`);
      expect(keys).toHaveLength(1);
      const hdr = await redis.hget(keys[0]!, 'hdr');
      expect(hdr).not.toBeNull();
      return hdr!;
    }

    function expectNoSecrets(hdr: string): void {
      for (const [name, value] of Object.entries(secrets)) {
        expect(hdr.toLowerCase()).not.toContain(name);
        expect(hdr).not.toContain(value);
      }
    }

    it('over HTTP: the handler sees x-trace but no credential, and Redis stores none', async () => {
      const res = await http(servers.main.url, 'POST', '/sec_echo/headerKeys', undefined, {
        ...secrets,
        'x-trace': 'trace-1',
      });
      expect(res.status).toBe(200);
      const seen = res.body as string[];
      expect(seen).toContain('x-trace');
      for (const name of Object.keys(secrets)) expect(seen).not.toContain(name);
      const id = String(res.headers['x-restate-id']);
      expect(id).toMatch(/^inv_/);
      const hdr = await storedHeaders(id);
      expect(JSON.parse(hdr)).toMatchObject({ 'x-trace': 'trace-1' });
      expectNoSecrets(hdr);
    });

    it('over HTTP: hop-by-hop headers describe the connection only, so neither the handler nor Redis sees them', async () => {
      const res = await http(servers.main.url, 'POST', '/sec_echo/headerKeys', undefined, {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-trace': 'trace-3',
      });
      expect(res.status).toBe(200);
      const seen = res.body as string[];
      expect(seen).toContain('x-trace');
      for (const name of ['connection', 'keep-alive', 'te']) expect(seen).not.toContain(name);
      const stored = Object.keys(
        JSON.parse(await storedHeaders(String(res.headers['x-restate-id']))),
      );
      expect(stored).toContain('x-trace');
      for (const name of ['connection', 'keep-alive', 'te']) expect(stored).not.toContain(name);
    });

    it('over the WebSocket `headers` field (any case): the handler and Redis see only x-trace', async () => {
      const socket = await openSocket('main');
      socket.send({
        id: 'h1',
        type: 'call',
        service: 'sec_echo',
        handler: 'headerKeys',
        headers: {
          Authorization: secrets.authorization,
          COOKIE: secrets.cookie,
          'Proxy-Authorization': secrets['proxy-authorization'],
          'X-Api-Key': secrets['x-api-key'],
          'X-Trace': 'trace-2',
        },
      });
      const result = await socket.next('result', (f) => f['id'] === 'h1' && f['type'] === 'result');
      expect(result).toMatchObject({ ok: true, value: ['x-trace'] });
      const hdr = await storedHeaders(String(result['invocationId']));
      expect(JSON.parse(hdr)).toEqual({ 'x-trace': 'trace-2' });
      expectNoSecrets(hdr);
    });
  });

  describe('request bodies within bounds', () => {
    it('a body that stops arriving (bodyTimeout 500 ms) -> 408 BODY_TIMEOUT, then the server closes the connection', async () => {
      const before = await keyspace('small');
      const c = await RawConn.open(servers.small.url);
      try {
        const started = Date.now();
        c.write(
          'POST /sec_echo/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n1',
        );
        const res = await Promise.race([
          c.answer,
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('no answer within 20 s')), 20_000).unref(),
          ),
        ]);
        const elapsed = Date.now() - started;
        expectError(res.status, res.body, {
          status: 408,
          errorCode: 'BODY_TIMEOUT',
          message: 'the request body did not arrive within 500 ms',
        });
        expect(elapsed).toBeGreaterThanOrEqual(400);
        await Promise.race([
          c.ended,
          new Promise<never>((_, reject) =>
            setTimeout(
              () => reject(new Error('connection not closed within 20 s')),
              20_000,
            ).unref(),
          ),
        ]);
      } finally {
        c.destroy();
      }
      expect(await snapshot('small')).toEqual(before);
      await expectHealthy('small');
    });

    it('maxBufferedBodyBytes 1 MiB: 3 unfinished 600 KiB bodies -> the ones over the budget get 503 BODY_BUFFER_FULL (Retry-After: 1); the budget is given back', async () => {
      const before = await keyspace('wide');
      const size = 600 * 1024;
      const conns = await Promise.all([0, 1, 2].map(() => RawConn.open(servers.wide.url)));
      try {
        const chunk = Buffer.concat([Buffer.from('"'), Buffer.alloc(size - 1, 'a')]);
        for (const c of conns) {
          c.write(
            `POST /sec_echo/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`,
          );
          c.write(chunk);
        }
        // A connection that is not refused holds its 600 KiB, so at most one of the three is not
        // refused; the one read last is never refused (it holds at most 600 KiB itself).
        await until('two refusals', () => conns.filter((c) => c.answered).length >= 2, 30_000);
        const answered = conns.filter((c) => c.answered).map((c) => c.answered!);
        expect(answered).toHaveLength(2);
        for (const res of answered) {
          expectError(res.status, res.body, {
            status: 503,
            errorCode: 'BODY_BUFFER_FULL',
            message: 'too many request bodies are arriving at once; retry later',
            extra: { retryAfter: 1 },
          });
          expect(res.headers['retry-after']).toBe('1');
        }
      } finally {
        for (const c of conns) c.destroy();
      }
      expect(await snapshot('wide')).toEqual(before);
      // Once the unfinished bodies are gone their bytes are given back: a complete 600 KiB body fits.
      const value = 'b'.repeat(size);
      const res = await until(
        'a 600 KiB body to be accepted',
        async () => {
          const r = await post(servers.wide.url, '/sec_echo/echo', JSON.stringify(value));
          expect(r.status).not.toBe(500);
          return r.status === 503 ? undefined : r;
        },
        20_000,
        200,
      );
      expect(res.status).toBe(200);
      expect(res.body).toBe(value);
      await expectHealthy('wide');
    });
  });

  // ---------------------------------------------------------------- WebSocket refusals

  interface WsRow {
    name: string;
    on?: Name;
    send: Frame | string;
    /** The error frame expected (`id` absent when the frame's id could not be read). */
    error: Expected & { id?: string };
  }

  const wsCall = (id: string, fields: Frame): Frame => ({
    id,
    type: 'call',
    service: 'sec_echo',
    handler: 'echo',
    input: 1,
    ...fields,
  });
  const wsSend = (id: string, fields: Frame): Frame => ({
    id,
    type: 'send',
    service: 'sec_echo',
    handler: 'echo',
    input: 1,
    ...fields,
  });

  const wsRows: WsRow[] = [
    {
      name: 'call of an object whose key is a lone surrogate',
      send: '{"id":"k1","type":"call","service":"sec_box","handler":"put","key":"\\ud800","input":1}',
      error: { id: 'k1', status: 400, errorCode: 'INVALID_KEY', message: LONE_KEY },
    },
    {
      name: 'attach by workflow id whose key is a lone surrogate',
      send: '{"id":"k2","type":"attach","workflow":"sec_gate","key":"\\ud800"}',
      error: { id: 'k2', status: 400, errorCode: 'INVALID_KEY', message: LONE_KEY },
    },
    {
      name: 'call with an idempotency key that is a lone surrogate',
      send: '{"id":"i1","type":"call","service":"sec_echo","handler":"echo","input":1,"idempotencyKey":"\\udc00"}',
      error: { id: 'i1', status: 400, errorCode: 'INVALID_IDEMPOTENCY_KEY', message: LONE_IDEM },
    },
    ...['attach', 'output', 'subscribe'].map((type): WsRow => ({
      name: `${type} by idempotency key whose service name is a lone surrogate`,
      send: `{"id":"n-${type}","type":"${type}","service":"\\ud800","handler":"h","idempotencyKey":"k"}`,
      error: { id: `n-${type}`, status: 400, errorCode: 'INVALID_REFERENCE', message: LONE_NAME },
    })),
    {
      name: 'a frame nested 100,000 levels',
      send: DEEP,
      error: {
        status: 400,
        errorCode: 'JSON_TOO_DEEP',
        message: 'the values in the frame nest deeper than 64 levels',
      },
    },
    {
      name: 'a call frame whose input nests 100,000 levels (the frame is too deep: no id read)',
      send: `{"id":"j1","type":"call","service":"sec_echo","handler":"echo","input":${DEEP}}`,
      error: {
        status: 400,
        errorCode: 'JSON_TOO_DEEP',
        message: 'the values in the frame nest deeper than 64 levels',
      },
    },
    {
      name: 'server with maxJsonDepth 8: a call frame whose input nests 9 levels (the frame: 10)',
      on: 'small',
      send: `{"id":"j2","type":"call","service":"sec_echo","handler":"echo","input":${nest(9)}}`,
      error: {
        status: 400,
        errorCode: 'JSON_TOO_DEEP',
        message: 'the values in the frame nest deeper than 8 levels',
      },
    },
    {
      name: 'send with delay 1e300',
      send: wsSend('d1', { delay: 1e300 }),
      error: {
        id: 'd1',
        status: 400,
        errorCode: 'INVALID_DELAY',
        message: maxDelayMessage(YEAR_MS),
      },
    },
    {
      name: 'send with delay -5',
      send: wsSend('d2', { delay: -5 }),
      error: {
        id: 'd2',
        status: 400,
        errorCode: 'INVALID_DELAY',
        message: 'invalid delay -5: a number of milliseconds, 0 or more',
      },
    },
    {
      name: "send with delay '366d'",
      send: wsSend('d3', { delay: '366d' }),
      error: {
        id: 'd3',
        status: 400,
        errorCode: 'INVALID_DELAY',
        message: maxDelayMessage(YEAR_MS),
      },
    },
    {
      name: 'submit with delay 1e300',
      send: { id: 'd4', type: 'submit', workflow: 'sec_gate', key: 'never', delay: 1e300 },
      error: {
        id: 'd4',
        status: 400,
        errorCode: 'INVALID_DELAY',
        message: maxDelayMessage(YEAR_MS),
      },
    },
    {
      name: 'server with maxDelay 1000: send with delay 1001',
      on: 'small',
      send: wsSend('d5', { delay: 1001 }),
      error: { id: 'd5', status: 400, errorCode: 'INVALID_DELAY', message: maxDelayMessage(1000) },
    },
    {
      name: 'headers given as an array',
      send: wsCall('h1', { headers: ['a'] }),
      error: {
        id: 'h1',
        status: 400,
        errorCode: 'INVALID_HEADERS',
        message: 'headers must be a JSON object of strings',
      },
    },
    {
      name: 'headers given as a string',
      send: wsCall('h2', { headers: 'x-a: 1' }),
      error: {
        id: 'h2',
        status: 400,
        errorCode: 'INVALID_HEADERS',
        message: 'headers must be a JSON object of strings',
      },
    },
    {
      name: 'a header value that is not a string',
      send: wsCall('h3', { headers: { 'x-a': 1 } }),
      error: {
        id: 'h3',
        status: 400,
        errorCode: 'INVALID_HEADERS',
        message:
          "header 'x-a' must be a string of at most 8192 characters without control characters",
      },
    },
    {
      name: 'a header value with a newline',
      send: wsCall('h4', { headers: { 'x-a': 'a\r\nset-cookie: x' } }),
      error: {
        id: 'h4',
        status: 400,
        errorCode: 'INVALID_HEADERS',
        message:
          "header 'x-a' must be a string of at most 8192 characters without control characters",
      },
    },
    {
      name: "a header name that is not an HTTP token ('bad name')",
      send: wsCall('h5', { headers: { 'bad name': 'v' } }),
      error: {
        id: 'h5',
        status: 400,
        errorCode: 'INVALID_HEADERS',
        message: 'a header name must be an HTTP token of 1 to 256 characters',
      },
    },
    {
      name: '65 headers',
      send: wsCall('h6', {
        headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-h${i}`, 'v'])),
      }),
      error: { id: 'h6', status: 400, errorCode: 'INVALID_HEADERS', message: 'at most 64 headers' },
    },
    {
      name: 'rejectAwakeable with a non-string reason',
      send: { id: 'r1', type: 'rejectAwakeable', awakeableId: MISSING_AWAKEABLE, reason: 42 },
      error: {
        id: 'r1',
        status: 400,
        errorCode: 'INVALID_FRAME',
        message: 'reason must be a string',
      },
    },
    {
      name: 'rejectAwakeable with an object reason',
      send: {
        id: 'r2',
        type: 'rejectAwakeable',
        awakeableId: MISSING_AWAKEABLE,
        reason: { message: 'x' },
      },
      error: {
        id: 'r2',
        status: 400,
        errorCode: 'INVALID_FRAME',
        message: 'reason must be a string',
      },
    },
  ];

  describe('WebSocket refusals', () => {
    for (const row of wsRows) {
      const on = row.on ?? 'main';
      it(`${row.name} -> ${row.error.status} ${row.error.errorCode}`, async () => {
        const socket = await openSocket(on);
        const before = await keyspace(on);
        socket.send(row.send);
        const frame = await socket.next('error', (f) => f['type'] === 'error');
        expect(socket.frames).toHaveLength(1);
        if (row.error.id === undefined) expect(frame).not.toHaveProperty('id');
        else expect(frame['id']).toBe(row.error.id);
        expectError(frame['code'] as number, frame, row.error);
        expect(await snapshot(on)).toEqual(before);
        // The same socket carries on.
        await expectHealthy(on, socket);
      });
    }
  });

  describe('WebSocket upgrade policy', () => {
    const refusals: {
      name: string;
      on: Name;
      path: string;
      headers?: Record<string, string>;
      status: number;
      errorCode: string;
      message: string;
    }[] = [
      {
        name: 'upgrade on /',
        on: 'main',
        path: '/',
        status: 404,
        errorCode: 'NOT_FOUND',
        message: 'WebSocket upgrades are served on /ws only',
      },
      {
        name: 'upgrade on /ws2',
        on: 'main',
        path: '/ws2',
        status: 404,
        errorCode: 'NOT_FOUND',
        message: 'WebSocket upgrades are served on /ws only',
      },
      {
        name: 'upgrade on /ws/',
        on: 'main',
        path: '/ws/',
        status: 404,
        errorCode: 'NOT_FOUND',
        message: 'WebSocket upgrades are served on /ws only',
      },
      ...[
        ['main', 'http://evil.example'],
        ['main', 'null'],
        ['small', 'http://evil.example'],
        ['small', 'https://app.example'],
      ].map(([on, origin]) => ({
        name: `Origin ${origin} on the ${on} server`,
        on: on as Name,
        path: '/ws',
        headers: { origin: origin! },
        status: 403,
        errorCode: 'ORIGIN_NOT_ALLOWED',
        message: 'this origin may not open a WebSocket here (see the allowedOrigins option)',
      })),
    ];
    for (const r of refusals) {
      it(`${r.name} -> ${r.status} ${r.errorCode}`, async () => {
        const before = await keyspace(r.on);
        const res = await tryUpgrade(servers[r.on].url, r.path, r.headers);
        expect(res.opened).toBe(false);
        if (res.opened) return;
        expectError(res.status, res.body, r);
        expect(await snapshot(r.on)).toEqual(before);
        await expectHealthy(r.on, await openSocket(r.on));
      });
    }

    const accepted: { name: string; on: Name; origin?: (url: string) => string }[] = [
      { name: 'no Origin (a non-browser client)', on: 'main' },
      { name: "the ingress's own origin", on: 'main', origin: (url) => url },
      {
        name: 'an origin of the allow-list (http://app.example)',
        on: 'small',
        origin: () => 'http://app.example',
      },
      {
        name: "any origin with allowedOrigins '*'",
        on: 'wide',
        origin: () => 'http://evil.example',
      },
    ];
    for (const a of accepted) {
      it(`${a.name} -> accepted`, async () => {
        const url = servers[a.on].url;
        const res = await tryUpgrade(url, '/ws', a.origin ? { origin: a.origin(url) } : {});
        expect(res).toEqual({ opened: true });
      });
    }

    it('a refused upgrade that carries a large body is closed: the server still shuts down', async () => {
      // Found by the fuzz test: the refused socket was left open, paused with its unread body, and
      // server.close() (the SIGTERM drain) waited for it forever.
      const prefix = newPrefix();
      const own = await startServer(redisTarget, prefix, SERVICES, {
        store: { stalledIntervalMs: 600_000 },
      });
      try {
        const { port } = new URL(own.url);
        const sock = connect(Number(port), '127.0.0.1');
        const answer = new Promise<string>((resolve) => {
          let got = '';
          sock.on('data', (d: Buffer) => {
            got += d.toString('latin1');
            if (got.includes('\r\n\r\n')) resolve(got);
          });
        });
        sock.on('error', () => undefined);
        sock.write(
          'POST /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 100000\r\n\r\n',
        );
        sock.write(Buffer.alloc(100_000, 'a'));
        expect(await answer).toMatch(/^HTTP\/1\.1 404 /);
        sock.destroy();
        let closed = false;
        const closing = own.close().then(() => (closed = true));
        await until('the server to close', () => closed, 20_000);
        await closing;
      } finally {
        await own.close();
        await deletePrefix(redisTarget, prefix);
      }
    });
  });

  describe('per-socket caps (maxOpenRequests 5, maxSubscriptions 2)', () => {
    /** Starts a sec_gate workflow on `small` and waits until it is suspended on its promise. */
    async function pendingWorkflow(key: string): Promise<string> {
      const res = await post(servers.small.url, `/sec_gate/${key}/run/send`, '');
      expect(res.status).toBe(202);
      const id = (res.body as { invocationId: string }).invocationId;
      await until(
        'the workflow to suspend',
        async () => (await servers.small.store.describe(id))?.status === 'suspended',
      );
      return id;
    }

    async function release(key: string): Promise<void> {
      expect(await post(servers.small.url, `/sec_gate/${key}/release`, '"go"')).toMatchObject({
        status: 200,
        body: 'released',
      });
    }

    it('the 6th open request is refused with 429 TOO_MANY_REQUESTS (any kind), creating nothing; the 5 complete', async () => {
      const id = await pendingWorkflow('caps-open');
      const socket = await openSocket('small');
      for (let i = 1; i <= 5; i++) socket.send({ id: `a${i}`, type: 'attach', invocationId: id });
      const before = await keyspace('small');
      const message = 'a socket may have at most 5 requests open at once';
      socket.send(wsSend('over-send', {}));
      const e1 = await socket.next('error', (f) => f['id'] === 'over-send');
      expectError(e1['code'] as number, e1, {
        status: 429,
        errorCode: 'TOO_MANY_REQUESTS',
        message,
      });
      socket.send({ id: 'over-ping', type: 'ping' });
      const e2 = await socket.next('error', (f) => f['id'] === 'over-ping');
      expectError(e2['code'] as number, e2, {
        status: 429,
        errorCode: 'TOO_MANY_REQUESTS',
        message,
      });
      socket.send({
        id: 'over-call',
        type: 'call',
        service: 'sec_box',
        handler: 'put',
        key: 'caps',
        input: 1,
      });
      const e3 = await socket.next('error', (f) => f['id'] === 'over-call');
      expectError(e3['code'] as number, e3, {
        status: 429,
        errorCode: 'TOO_MANY_REQUESTS',
        message,
      });
      expect(await snapshot('small')).toEqual(before);
      // Nothing else was answered: the 5 attaches still wait.
      expect(socket.frames.map((f) => f['id'])).toEqual(['over-send', 'over-ping', 'over-call']);

      await release('caps-open');
      for (let i = 1; i <= 5; i++) {
        expect(
          await socket.next(`result a${i}`, (f) => f['id'] === `a${i}` && f['type'] === 'result'),
        ).toMatchObject({ ok: true, value: 'went:go' });
      }
      // The finished requests no longer count.
      socket.send({ id: 'p', type: 'ping' });
      expect(await socket.next('pong', (f) => f['id'] === 'p')).toMatchObject({ type: 'pong' });
      await expectHealthy('small', socket);
    });

    it('the 3rd subscription is refused with 429 TOO_MANY_SUBSCRIPTIONS, creating nothing; after an unsubscribe a new one is served', async () => {
      const id = await pendingWorkflow('caps-subs');
      const socket = await openSocket('small');
      for (const s of ['s1', 's2']) {
        socket.send({ id: s, type: 'subscribe', invocationId: id });
        expect(
          await socket.next(`subscribed ${s}`, (f) => f['id'] === s && f['type'] === 'subscribed'),
        ).toMatchObject({ invocationId: id });
      }
      const before = await keyspace('small');
      socket.send({ id: 's3', type: 'subscribe', invocationId: id });
      const e = await socket.next('error', (f) => f['id'] === 's3');
      expectError(e['code'] as number, e, {
        status: 429,
        errorCode: 'TOO_MANY_SUBSCRIPTIONS',
        message: 'a socket may hold at most 2 subscriptions',
      });
      // The same refusal for a subscription by workflow id.
      socket.send({ id: 's3b', type: 'subscribe', workflow: 'sec_gate', key: 'caps-subs' });
      const eb = await socket.next('error', (f) => f['id'] === 's3b');
      expectError(eb['code'] as number, eb, {
        status: 429,
        errorCode: 'TOO_MANY_SUBSCRIPTIONS',
        message: 'a socket may hold at most 2 subscriptions',
      });
      expect(await snapshot('small')).toEqual(before);

      socket.send({ id: 'u1', type: 'unsubscribe', subscription: 's1' });
      expect(await socket.next('unsubscribed', (f) => f['id'] === 'u1')).toMatchObject({
        type: 'unsubscribed',
      });
      socket.send({ id: 's4', type: 'subscribe', invocationId: id });
      expect(
        await socket.next('subscribed s4', (f) => f['id'] === 's4' && f['type'] === 'subscribed'),
      ).toMatchObject({ invocationId: id });

      await release('caps-subs');
      for (const s of ['s2', 's4']) {
        expect(
          await socket.next(`result ${s}`, (f) => f['id'] === s && f['type'] === 'result'),
        ).toMatchObject({ ok: true, value: 'went:go' });
      }
      expect(socket.answersTo('s1').filter((f) => f['type'] === 'result')).toEqual([]);
      await expectHealthy('small', socket);
    });

    it('cancel without a token -> 404 NOT_FOUND, and the invocation keeps waiting', async () => {
      const id = await pendingWorkflow('caps-cancel');
      const socket = await openSocket('small');
      const before = await keyspace('small');
      socket.send({ id: 'c1', type: 'cancel', invocationId: id });
      const e = await socket.next('error', (f) => f['id'] === 'c1');
      expectError(e['code'] as number, e, {
        status: 404,
        errorCode: 'NOT_FOUND',
        message: `invocation ${id} not found, already completed, or not started by this client (give its cancel token)`,
      });
      // A wrong token is no better.
      socket.send({ id: 'c2', type: 'cancel', invocationId: id, token: 'not-the-token' });
      const e2 = await socket.next('error', (f) => f['id'] === 'c2');
      expectError(e2['code'] as number, e2, {
        status: 404,
        errorCode: 'NOT_FOUND',
        message: /^invocation inv_\S+ not found/,
      });
      expect(await snapshot('small')).toEqual(before);
      const info = await servers.small.store.describe(id);
      expect(info?.status).toBe('suspended');
      expect(info?.outcome).toBeUndefined();
      await expectHealthy('small', socket);
      await release('caps-cancel');
      const done = await until('the workflow to complete', async () => {
        const i = await servers.small.store.describe(id);
        return i?.status === 'completed' ? i : undefined;
      });
      expect(done.outcome).toEqual({ ok: true, value: '"went:go"' });
    });
  });

  // ---------------------------------------------------------------- admin API

  interface AdminRow extends Expected {
    name: string;
    send: (admin: string) => Promise<Answer>;
  }

  const adminRows: AdminRow[] = [
    {
      name: 'no token, GET /invocations/%E0%A4%A (the token is checked before the path is parsed)',
      send: (a) => http(a, 'GET', '/invocations/%E0%A4%A'),
      status: 401,
      errorCode: 'UNAUTHORIZED',
      message: 'missing or wrong bearer token',
    },
    {
      name: 'no token, a malformed request target (GET http://[, raw TCP)',
      send: (a) => raw(a, 'GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      status: 401,
      errorCode: 'UNAUTHORIZED',
      message: 'missing or wrong bearer token',
    },
    {
      name: 'a wrong token, a state patch with a body nested 100,000 levels',
      send: (a) => post(a, '/services/sec_box/state/k', DEEP, { authorization: 'Bearer nope' }),
      status: 401,
      errorCode: 'UNAUTHORIZED',
      message: 'missing or wrong bearer token',
    },
    {
      name: 'no token, a text/plain state patch (401 before the content type)',
      send: (a) =>
        http(a, 'POST', '/services/sec_box/state/k', '{"v":1}', { 'content-type': 'text/plain' }),
      status: 401,
      errorCode: 'UNAUTHORIZED',
      message: 'missing or wrong bearer token',
    },
    {
      name: 'with the token, GET /invocations/%E0%A4%A',
      send: (a) => http(a, 'GET', '/invocations/%E0%A4%A', undefined, AUTH),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed percent-encoding in "%E0%A4%A"',
    },
    {
      name: 'with the token, a malformed request target (raw TCP)',
      send: (a) =>
        raw(
          a,
          `GET http://[ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
        ),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed request target',
    },
    {
      name: 'with the token, a state patch nested 100,000 levels',
      send: (a) => post(a, '/services/sec_box/state/k', DEEP, AUTH),
      status: 400,
      errorCode: 'JSON_TOO_DEEP',
      message: 'the JSON nests deeper than 64 levels',
    },
    ...[
      ['text/plain', { 'content-type': 'text/plain' }],
      ['no content type', {}],
      [
        'application/x-www-form-urlencoded',
        { 'content-type': 'application/x-www-form-urlencoded' },
      ],
      ['multipart/form-data', { 'content-type': 'multipart/form-data; boundary=x' }],
      ['application/jsonp', { 'content-type': 'application/jsonp' }],
    ].map(([what, headers]): AdminRow => ({
      name: `a state patch sent as ${what as string}`,
      send: (a) =>
        http(a, 'POST', '/services/sec_box/state/k', '{"v":"patched"}', {
          ...AUTH,
          ...(headers as Record<string, string>),
        }),
      status: 415,
      errorCode: 'UNSUPPORTED_CONTENT_TYPE',
      message: 'send the state patch as application/json',
    })),
    {
      name: 'a state patch of an unknown service',
      send: (a) => post(a, '/services/nope/state/k', '{"v":1}', AUTH),
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "no object or workflow named 'nope'",
    },
    {
      name: 'a state patch of a plain service (no state)',
      send: (a) => post(a, '/services/sec_echo/state/k', '{"v":1}', AUTH),
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "no object or workflow named 'sec_echo'",
    },
    {
      name: 'a state read of an unknown service',
      send: (a) => http(a, 'GET', '/services/nope/state/k', undefined, AUTH),
      status: 404,
      errorCode: 'NOT_FOUND',
      message: "no object or workflow named 'nope'",
    },
    {
      name: 'a state patch of an object key that is a lone surrogate (%ED%A0%80)',
      send: (a) => post(a, '/services/sec_box/state/%ED%A0%80', '{"v":1}', AUTH),
      status: 400,
      errorCode: 'INVALID_PATH',
      message: 'malformed percent-encoding in "%ED%A0%80"',
    },
    ...['constructor', '__proto__', 'hasOwnProperty', 'toString'].map((op): AdminRow => ({
      name: `PATCH /invocations/<existing id>/${op}`,
      send: (a) => http(a, 'PATCH', `/invocations/${existingId}/${op}`, undefined, AUTH),
      status: 404,
      errorCode: 'NOT_FOUND',
      message: `unknown operation ${op}`,
    })),
  ];

  describe('admin API refusals', () => {
    for (const row of adminRows) {
      it(`${row.name} -> ${row.status} ${row.errorCode}`, async () => {
        const before = await keyspace('main');
        const res = await row.send(servers.main.adminUrl!);
        expectError(res.status, res.body, row);
        expect(await snapshot('main')).toEqual(before);
        // The admin API and the ingress still serve.
        expect(
          await http(servers.main.adminUrl!, 'GET', `/invocations/${existingId}`, undefined, AUTH),
        ).toMatchObject({
          status: 200,
          body: { id: existingId, status: 'completed' },
        });
        await expectHealthy('main');
      });
    }

    it('a state patch sent as application/json is applied (200)', async () => {
      const a = servers.main.adminUrl!;
      const res = await http(a, 'POST', '/services/sec_box/state/patched', '{"v":"from admin"}', {
        ...AUTH,
        'content-type': 'application/json; charset=utf-8',
      });
      expect(res).toMatchObject({
        status: 200,
        body: { service: 'sec_box', key: 'patched', patched: ['v'] },
      });
      expect(
        await http(a, 'GET', '/services/sec_box/state/patched', undefined, AUTH),
      ).toMatchObject({ status: 200, body: { state: { v: 'from admin' } } });
      expect(await post(servers.main.url, '/sec_box/patched/get', '')).toMatchObject({
        status: 200,
        body: 'from admin',
      });
    });
  });

  // ---------------------------------------------------------------- listening addresses

  describe('listening addresses', () => {
    const store = (prefix: string): ReturnType<typeof createRedisStore> =>
      createRedisStore({
        ...redisTarget,
        prefix,
        ...FAST_TIMINGS,
        stalledIntervalMs: 600_000,
        logger: quietLogger,
      });

    /** Runs `fn` with the named environment variables unset. */
    async function withoutEnv<T>(names: string[], fn: () => Promise<T>): Promise<T> {
      const saved = names.map((n) => [n, process.env[n]] as const);
      for (const n of names) delete process.env[n];
      try {
        return await fn();
      } finally {
        for (const [n, v] of saved) if (v !== undefined) process.env[n] = v;
      }
    }

    it('serve() refuses an admin API on 0.0.0.0 without a token, before touching the store or listening', async () => {
      const prefix = newPrefix();
      const real = store(prefix);
      let inits = 0;
      const spied = new Proxy(real, {
        get(target, prop) {
          if (prop === 'init') inits++;
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const [port, adminPort] = [await freePort(), await freePort()];
      try {
        await withoutEnv(['LATCHKEY_ADMIN_TOKEN'], async () => {
          await expect(
            serve({
              services: SERVICES,
              store: spied,
              port,
              handleSignals: false,
              logger: quietLogger,
              admin: { port: adminPort, host: '0.0.0.0' },
            }),
          ).rejects.toThrow(/the admin API may listen on 0\.0\.0\.0 only with a token/);
        });
        expect(inits).toBe(0);
        expect(await snapshotKeyspace(redis, prefix)).toEqual({});
        expect(await accepts(port)).toBe(false);
        expect(await accepts(adminPort)).toBe(false);
      } finally {
        await real.close();
        await deletePrefix(redisTarget, prefix);
      }
    });

    it('with a token the admin API starts on 0.0.0.0 (and checks the token)', async () => {
      const prefix = newPrefix();
      const server = await withoutEnv(['LATCHKEY_ADMIN_TOKEN', 'LATCHKEY_HOST'], () =>
        serve({
          services: SERVICES,
          store: store(prefix),
          port: 0,
          handleSignals: false,
          logger: quietLogger,
          admin: { port: 0, host: '0.0.0.0', token: TOKEN },
        }),
      );
      try {
        const a = server.adminUrl!;
        expect(await http(a, 'GET', '/health')).toMatchObject({
          status: 200,
          body: { status: 'ok' },
        });
        const refused = await http(a, 'GET', '/invocations');
        expectError(refused.status, refused.body, {
          status: 401,
          errorCode: 'UNAUTHORIZED',
          message: 'missing or wrong bearer token',
        });
        expect(await http(a, 'GET', '/invocations', undefined, AUTH)).toMatchObject({
          status: 200,
          body: { invocations: [] },
        });
        const l = listeners(Number(new URL(a).port));
        if (process.platform === 'linux') expect(l).toBeDefined();
        if (l) expect([...l.v4, ...l.v6].some((addr) => /^0+$/.test(addr))).toBe(true);
      } finally {
        await server.close();
        await deletePrefix(redisTarget, prefix);
      }
    });

    it('the public ingress listens on loopback (127.0.0.1) when no host is given', async () => {
      const prefix = newPrefix();
      const server = await withoutEnv(['LATCHKEY_HOST'], () =>
        serve({
          services: SERVICES,
          store: store(prefix),
          port: 0,
          handleSignals: false,
          logger: quietLogger,
        }),
      );
      try {
        const res = await post(
          `http://127.0.0.1:${server.port}`,
          '/sec_echo/echo',
          '"on loopback"',
        );
        expect(res).toMatchObject({ status: 200, body: 'on loopback' });
        // Where the OS says it listens (Linux): 127.0.0.1 only, no wildcard address.
        const l = listeners(server.port);
        if (process.platform === 'linux') expect(l).toBeDefined();
        if (l) {
          expect(l.v4).toEqual(['0100007F']);
          expect(l.v6).toEqual([]);
        }
      } finally {
        await server.close();
        await deletePrefix(redisTarget, prefix);
      }
    });
  });

  // Last for `wide`: it leaves a year-long delayed invocation behind.
  describe('a delay of exactly the maximum', () => {
    it('?delay=365d is accepted (202) and the invocation is delayed', async () => {
      const res = await post(servers.wide.url, '/sec_echo/echo/send?delay=365d', '"next year"');
      expect(res).toMatchObject({ status: 202, body: { status: 'Accepted' } });
      const id = (res.body as { invocationId: string }).invocationId;
      expect((await servers.wide.store.describe(id))?.status).toBe('delayed');
      await expectHealthy('wide');
    });
  });
});
