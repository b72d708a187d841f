/**
 * Seeded fuzz of the public ingresses (HTTP and WebSocket, one port) and of the admin API:
 * random methods, request targets, headers, bodies and frames, drawn from a grammar that mixes the
 * real names of the served definitions (services, handlers, keys, invocation and awakeable ids
 * seen so far) with garbage. Bounded in count (about 300 HTTP requests, 300 WebSocket frames, 100
 * admin requests, a few upgrades) and in time.
 *
 * For every request or frame:
 *  - no 500 (no 5xx at all, save 503 BODY_BUFFER_FULL), no WebSocket error frame with code 500;
 *    every error answer is JSON `{code, errorCode, message}` (except Node's own bare 400/431 for
 *    requests its HTTP parser refuses, and the `ws` library's handshake refusals);
 *  - a refused request (4xx, error frame, socket closed for a bad frame) changed no key under the
 *    test prefix (every key with a digest of its value, BullMQ's included): the keyspace is taken
 *    once settled (`settledKeyspace`) before the request and compared right after its answer
 *    (`snapshotKeyspace`, which digests each key's content). An accepted request may write keys:
 *    the keyspace settles again before the next check;
 *  - the server logged no error (an unexpected failure is logged, then answered 500);
 *  - the private handler's result never reaches a client.
 * Every 50 requests and at the end the server is still healthy (GET /health, good calls, the
 * admin's /health), the test process saw no unhandled error, and at the end `server.close()`
 * finishes (no connection left holding the server).
 *
 * Reproduce a failure with `LK_FUZZ_SEED=<seed> npx vitest run test/fuzz.redis.test.ts` (the seed
 * is in the describe name and in every failure message); `LK_FUZZ_SCALE=4` runs 4× as many.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import {
  handlers,
  object,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { deletePrefix, newPrefix, post, quietLogger, startServer } from './helpers/harness.js';
import { settledKeyspace, snapshotKeyspace, type Keyspace } from './helpers/keyspace.js';
import { jsonTooDeep } from '@latchkey/core/internal';
import {
  Rng,
  describeKeys,
  fuzzSeed,
  keyspaceDiff,
  preview,
  rawHttp,
  type RawAnswer,
  type RawNoAnswer,
} from './helpers/fuzz.js';
import { rawClient, type RawRedis } from './helpers/redis.js';

/** A path segment for any drawn string (a lone surrogate, which has no UTF-8 form, becomes U+FFFD). */
function urlSegment(s: string): string {
  return encodeURIComponent(
    s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'),
  );
}

const redisTarget = inject('redisTarget');

const SEED = fuzzSeed();
const SCALE = Math.max(0.1, Number(process.env['LK_FUZZ_SCALE'] ?? 1) || 1);
const COUNT = {
  http: Math.round(300 * SCALE),
  ws: Math.round(300 * SCALE),
  admin: Math.round(100 * SCALE),
  upgrades: 16,
};
const HEALTH_EVERY = 50;
const TOKEN = 'fuzz-token';
const MAX_JSON_DEPTH = 64;
const MAX_FRAME = 1024 * 1024;
const VERBOSE = !!process.env['LK_FUZZ_VERBOSE'];
/** `LK_FUZZ_TRACE=1` prints one line per request and its answer. */
const trace = (line: () => string): void => {
  if (process.env['LK_FUZZ_TRACE']) console.log(`[fuzz] ${line()}`);
};

// ------------------------------------------------------------------ the served definitions

/** What the private handler returns: it must never reach a client of the ingress. */
const PRIVATE_MARKER = 'fz-private-7c1e9a0d';

/** Every handler completes at once for any JSON input (no retries, no waits), so the keyspace settles. */
const echo = service({
  name: 'fz_echo',
  handlers: {
    echo: async (_ctx: Context, input: unknown) => input ?? null,
    size: async (ctx: Context, input: unknown) =>
      ctx.run('size', () => JSON.stringify(input ?? null).length),
    secret: handlers.handler({ ingressPrivate: true }, async (_ctx: Context) => PRIVATE_MARKER),
  },
});

const person = service({
  name: 'fz_person',
  handlers: {
    register: handlers.handler(
      { input: z.object({ name: z.string().min(1).max(64), age: z.number().int().nonnegative() }) },
      async (_ctx: Context, p: { name: string; age: number }) => `${p.name} (${p.age})`,
    ),
  },
});

const box = object({
  name: 'fz_box',
  handlers: {
    put: async (ctx: ObjectContext, v: unknown) => {
      ctx.set('v', v ?? null);
      return ctx.key;
    },
    add: async (ctx: ObjectContext, d: unknown) => {
      const prev = (await ctx.get<number>('n')) ?? 0;
      const n =
        (typeof prev === 'number' && Number.isFinite(prev) ? prev : 0) +
        (typeof d === 'number' && Number.isFinite(d) ? d : 1);
      ctx.set('n', Number.isFinite(n) ? n : 0);
      return n;
    },
    get: handlers.object.shared(async (ctx: ObjectSharedContext) => ({
      v: (await ctx.get<unknown>('v')) ?? null,
      n: (await ctx.get<number>('n')) ?? 0,
    })),
  },
});

const flow = workflow({
  name: 'fz_flow',
  handlers: {
    run: async (ctx: WorkflowContext, input: unknown) => {
      const len = await ctx.run('measure', () => JSON.stringify(input ?? null).length);
      ctx.set('len', len);
      return { len };
    },
    status: async (ctx: WorkflowSharedContext) => (await ctx.get<number>('len')) ?? null,
  },
});

const DEFS = [echo, person, box, flow];
const HANDLERS: Record<string, string[]> = {
  fz_echo: ['echo', 'size', 'secret'],
  fz_person: ['register'],
  fz_box: ['put', 'add', 'get'],
  fz_flow: ['run', 'status'],
};
const SERVICES = Object.keys(HANDLERS);
const KEYED = new Set(['fz_box', 'fz_flow']);

// ------------------------------------------------------------------ the grammar's vocabulary

const ODD_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'prototype',
  'valueOf',
  'nope',
  'restate',
  'send',
  'run',
  'health',
  'ws',
  '\ud800',
];
// prettier-ignore
const PERCENT = [
  '%', '%G1', '%ED%A0%80', '%00', '%2e%2e', '%2E', '%2F', '%5C', '%C0%AE', '%E0%A4%A',
  '%FF', '%25', '%20', '%0A', '%7F', '%F0%9F%98%80', '%u0041', '%%%', '%2', 'a%2Fb',
];
const UNICODE = ['ключ', '日本', '😀', 'e\u0301', '\u200b', '\ufeff', 'ß', 'ﬁ'];
const SPECIAL = [
  '?',
  '#',
  ';',
  '@',
  ':',
  '*',
  '$',
  '&',
  '=',
  '+',
  ',',
  "'",
  '"',
  '<',
  '>',
  '{',
  '}',
  '|',
  '^',
  '`',
  '[',
  ']',
  '!',
  '~',
];
const URL_SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~';
const IDEM_POOL = ['idem-1', 'idem-2', 'idem-3'];
const KEY_POOL = ['k1', 'k2', 'k3', 'w1', 'w2'];
const MISSING_INVOCATION = 'inv_00AAAAAAAAAAAAAAAAAAAA';
/** Delays an accepted send may carry: all short, so the keyspace settles within a second. */
const SHORT_DELAYS = [
  '0',
  '1',
  '10',
  '250ms',
  '0.5s',
  '1s',
  'PT0.2S',
  'PT1S',
  'P0D',
  '%30',
  '0.001s',
];
/** Delays the ingress refuses (malformed, negative, non-finite, beyond the 365-day maximum). */
const BAD_DELAYS = [
  '-1',
  '1e300',
  '99999999999999999999999',
  'P99999999D',
  'soon',
  '',
  '10%20s',
  '0x10',
  'NaN',
  'Infinity',
  '1.5.5',
  'PT',
  'P',
  '%00',
  '%ZZ',
  '1e3',
  '31536000001',
  '366d',
  'PT-1S',
  'P1Y',
  '9'.repeat(400),
];

const b64url = (s: string): string => Buffer.from(s).toString('base64url');

/** The ids the run has seen (from accepted answers): the grammar reuses them. */
const seen = {
  ids: [] as string[],
  tokens: [] as { id: string; token: string }[],
  wsIds: [] as string[],
};

function realId(rng: Rng): string | undefined {
  return seen.ids.length > 0 ? rng.pick(seen.ids) : undefined;
}

function invocationIdFor(rng: Rng): string {
  return rng.weighted<() => string>([
    [6, () => realId(rng) ?? MISSING_INVOCATION],
    [2, () => MISSING_INVOCATION],
    [1, () => 'not-an-id'],
    [1, () => 'inv_'],
    [1, () => `inv_${'A'.repeat(rng.range(81, 300))}`],
    [1, () => `${realId(rng) ?? MISSING_INVOCATION}x`],
    [1, () => garbageSeg(rng)],
  ])();
}

function awakeableIdFor(rng: Rng): string {
  const inv = realId(rng) ?? MISSING_INVOCATION;
  return rng.weighted<() => string>([
    [4, () => `sign_1${b64url(`${inv}:${rng.range(0, 3)}`)}`],
    [3, () => `sign_1${b64url(`${inv}:${rng.range(0, 3)}:${rng.chars(32, '0123456789abcdef')}`)}`],
    [1, () => `sign_1${b64url(`${inv}:99999999999`)}`],
    [1, () => 'sign_1'],
    [1, () => 'sign_1!!!'],
    [1, () => 'not-an-id'],
    [1, () => `sign_1${'A'.repeat(300)}`],
    [1, () => `sign_0${b64url(`${inv}:1`)}`],
  ])();
}

/** A garbage path segment (as it appears in a request target: escapes are left as written). */
function garbageSeg(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => rng.chars(rng.range(1, 12), URL_SAFE)],
    [5, () => rng.pick(PERCENT)],
    [2, () => `${rng.chars(2, URL_SAFE)}${rng.pick(PERCENT)}${rng.chars(2, URL_SAFE)}`],
    [2, () => urlSegment(rng.pick(UNICODE))],
    [0.7, () => rng.pick(UNICODE)], // raw UTF-8 bytes in the target (Node's parser refuses them)
    [1, () => 'x'.repeat(rng.pick([1025, 4000]))],
    [0.3, () => 'x'.repeat(20_000)], // beyond Node's header size limit
    [2, () => rng.pick(['.', '..', '...', 'a\\b', '\\'])],
    [2, () => rng.pick(SPECIAL)],
    [2, () => rng.pick(ODD_NAMES)],
    [1, () => ''],
  ])();
}

function keySeg(rng: Rng): string {
  return rng.weighted<() => string>([
    [10, () => rng.pick(KEY_POOL)],
    [2, () => rng.pick(['__proto__', 'constructor', 'prototype'])],
    [1, () => urlSegment(rng.pick(UNICODE))],
    [1, () => rng.pick(['%00', '%ED%A0%80', '%1B%5B31m', 'x%7F', '%2F', 'a%20b', '%0A'])],
    [1, () => 'k'.repeat(rng.pick([1024, 1025]))],
    [3, () => garbageSeg(rng)],
  ])();
}

// ------------------------------------------------------------------ JSON values

/** A JSON-able value with odd corners: lone surrogates, `__proto__` keys, big numbers, long strings. */
function genValue(rng: Rng, depth = 0): unknown {
  if (depth >= 4 || rng.chance(0.55)) {
    return rng.weighted<() => unknown>([
      [3, () => null],
      [2, () => rng.chance(0.5)],
      [4, () => rng.int(1000)],
      [2, () => -rng.int(1_000_000)],
      [1, () => rng.pick([1e308, -1e-308, 2 ** 53 + 1, 0.1, -0])],
      [5, () => rng.chars(rng.range(0, 16), URL_SAFE + ' "\\/')],
      [2, () => rng.pick(UNICODE)],
      [1, () => rng.pick(['\ud800', 'a\udc00b', '\udbff', '\u0000\u001f', '\u2028'])],
      [1, () => 'x'.repeat(rng.range(1000, 20_000))],
      [1, () => rng.pick(ODD_NAMES)],
    ])();
  }
  if (rng.chance(0.4)) return Array.from({ length: rng.int(5) }, () => genValue(rng, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = rng.int(5); i > 0; i--) {
    const k = rng.weighted<() => string>([
      [4, () => rng.pick(['a', 'b', 'name', 'age', 'id', 'type'])],
      [2, () => rng.pick(['__proto__', 'constructor', 'prototype', 'toString', ''])],
      [1, () => rng.pick(['\ud800', '\u0000'])],
      [2, () => rng.chars(rng.range(1, 8), URL_SAFE)],
    ])();
    // An own `__proto__` property (assignment would set the prototype instead).
    Object.defineProperty(o, k, {
      value: genValue(rng, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

const nested = (n: number, closed: boolean): string =>
  '['.repeat(n) + (closed ? ']'.repeat(n) : '');

/** JSON text that is almost right, or wrong in a well-known way. */
function oddJson(rng: Rng): string {
  return rng.pick([
    '1e400',
    '-0',
    '[1,]',
    '{"a":1,"a":2}',
    '"\\ud800"',
    '\ufeff{}',
    ' 1 ',
    '01',
    'NaN',
    'nul',
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '"\\u0000"',
    '{',
    '}',
    '"unterminated',
    '{"a":"\\x"}',
    '[' + '1,'.repeat(1000) + '1]',
    '{"name":"Ada","age":36}',
    '{"name":"","age":-1}',
    'true',
    'null',
    '""',
  ]);
}

// ------------------------------------------------------------------ HTTP requests

type Framing =
  'length' | 'none' | 'chunked' | 'bad-chunked' | 'short-length' | 'huge-length' | 'abort';

interface HttpOp {
  method: string;
  target: string;
  version: string;
  host: string | undefined;
  headers: [string, string][];
  body: Buffer | undefined;
  framing: Framing;
  upgrade: boolean;
}

function genHttpTarget(rng: Rng): {
  target: string;
  svc?: string;
  handler?: string;
  getish: boolean;
  reference: boolean;
} {
  const form = rng.weighted([
    [40, 'handler'],
    [10, 'restate-call'],
    [8, 'inv'],
    [5, 'inv-idem'],
    [5, 'wf'],
    [6, 'awk'],
    [5, 'attach'],
    [4, 'health'],
    [8, 'garbage'],
    [3, 'special'],
  ] as const);
  let segs: string[];
  let svc: string | undefined;
  let handler: string | undefined;
  let getish = false;
  let reference = false;
  const pickSvc = (): string =>
    rng.chance(0.88) ? rng.pick(SERVICES) : rng.chance(0.5) ? rng.pick(ODD_NAMES) : garbageSeg(rng);
  const pickHandler = (s: string): string =>
    HANDLERS[s] && rng.chance(0.85)
      ? rng.pick(HANDLERS[s])
      : rng.chance(0.5)
        ? rng.pick(ODD_NAMES)
        : garbageSeg(rng);
  const handlerSegs = (): string[] => {
    svc = pickSvc();
    handler = pickHandler(svc);
    const keyed = KEYED.has(svc) ? rng.chance(0.9) : rng.chance(0.08);
    return [svc, ...(keyed ? [keySeg(rng)] : []), handler];
  };
  switch (form) {
    case 'handler':
      segs = [...handlerSegs(), ...(rng.chance(0.2) ? ['send'] : [])];
      break;
    case 'restate-call':
      segs = ['restate', rng.pick(['call', 'send']), ...handlerSegs()];
      break;
    case 'inv':
      segs = ['restate', 'invocation', invocationIdFor(rng), rng.pick(['attach', 'output'])];
      getish = true;
      break;
    case 'inv-idem': {
      const s = pickSvc();
      const keyed = KEYED.has(s) ? rng.chance(0.85) : rng.chance(0.1);
      const idem = rng.chance(0.7) ? rng.pick(IDEM_POOL) : garbageSeg(rng);
      segs = [
        'restate',
        'invocation',
        s,
        ...(keyed ? [keySeg(rng)] : []),
        pickHandler(s),
        idem,
        rng.pick(['attach', 'output']),
      ];
      getish = true;
      break;
    }
    case 'wf':
      segs = [
        'restate',
        'workflow',
        rng.chance(0.8) ? 'fz_flow' : pickSvc(),
        keySeg(rng),
        rng.pick(['attach', 'output']),
      ];
      getish = true;
      break;
    case 'awk':
      segs = [
        'restate',
        rng.pick(['awakeables', 'awakeables', 'a']),
        urlSegment(awakeableIdFor(rng)),
      ];
      segs.push(rng.pick(['resolve', 'resolve', 'reject', 'cancel']));
      break;
    case 'attach':
      if (rng.chance(0.5)) {
        segs = ['restate', rng.pick(['attach', 'output'])];
        reference = true;
      } else {
        segs = ['restate', rng.pick(['attach', 'output']), invocationIdFor(rng)];
        getish = true;
      }
      break;
    case 'health':
      segs = ['health'];
      getish = true;
      break;
    case 'garbage':
      segs = Array.from({ length: rng.range(0, 5) }, () =>
        rng.chance(0.3) ? rng.pick(['restate', ...SERVICES]) : garbageSeg(rng),
      );
      break;
    case 'special':
      return {
        target: rng.pick([
          '*',
          'http://[',
          `http://127.0.0.1/fz_echo/echo`,
          'http://evil.example/health',
          '/',
          '//',
          '/?',
          '/#',
          '127.0.0.1:80',
          '/restate',
          '/restate/',
        ]),
        getish: rng.chance(0.5),
        reference: false,
      };
  }
  // Mutations: a segment swapped for garbage, empty or dot segments, a trailing slash.
  if (segs.length > 0 && rng.chance(0.1)) segs[rng.int(segs.length)] = garbageSeg(rng);
  if (rng.chance(0.04)) segs.splice(rng.int(segs.length + 1), 0, '');
  if (rng.chance(0.04))
    segs.splice(rng.int(segs.length + 1), 0, rng.pick(['.', '..', '%2e%2e', '%2E']));
  let target = `/${segs.join('/')}${rng.chance(0.04) ? '/' : ''}`;
  if (rng.chance(0.25)) {
    target += rng.weighted<() => string>([
      [4, () => `?delay=${rng.pick(BAD_DELAYS)}`],
      [3, () => `?delay=${rng.pick(SHORT_DELAYS)}`],
      [1, () => `?delay=1&delay=${rng.pick(BAD_DELAYS)}`],
      [1, () => `?${rng.pick(PERCENT)}=${rng.pick(PERCENT)}&delay`],
      [1, () => `?x=${'q'.repeat(rng.range(10, 3000))}`],
      [1, () => `#${rng.chars(5, URL_SAFE)}`],
      [1, () => '?'],
    ])();
  }
  return {
    target,
    ...(svc !== undefined ? { svc } : {}),
    ...(handler !== undefined ? { handler } : {}),
    getish,
    reference,
  };
}

function genInput(rng: Rng, svc: string | undefined, handler: string | undefined): unknown {
  if (svc === 'fz_person' && handler === 'register' && rng.chance(0.7)) {
    return rng.weighted<() => unknown>([
      [4, () => ({ name: rng.chars(rng.range(1, 10), URL_SAFE), age: rng.int(120) })],
      [1, () => ({ name: '', age: 1 })],
      [1, () => ({ name: 'Ada', age: 1.5 })],
      [1, () => ({ name: 'Ada', age: -1 })],
      [1, () => ({ name: 'x'.repeat(65), age: 1 })],
      [1, () => ({ name: 'Ada' })],
      [1, () => 'Ada'],
      [1, () => ({ name: 'Ada', age: 1, extra: genValue(rng) })],
    ])();
  }
  if (svc === 'fz_box' && handler === 'add' && rng.chance(0.6))
    return rng.pick([1, 2, -5, 0.5, 1e308, 'x', null]);
  return genValue(rng);
}

function genReference(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [3, () => ({ invocationId: invocationIdFor(rng) })],
    [
      2,
      () => ({
        workflow: rng.chance(0.8) ? 'fz_flow' : rng.pick([...ODD_NAMES, '']),
        key: rng.chance(0.8) ? rng.pick(KEY_POOL) : genValue(rng),
      }),
    ],
    [
      2,
      () => ({
        service: rng.chance(0.85) ? rng.pick(SERVICES) : rng.pick([...ODD_NAMES, 'a\udc00']),
        handler: rng.pick(['echo', 'put', 'secret', 'register', 'nope', '\udc00']),
        idempotencyKey: rng.pick([...IDEM_POOL, '', '\ud800', 'x'.repeat(1025)]),
        ...(rng.chance(0.5) ? { key: rng.pick([...KEY_POOL, '', '\u0000']) } : {}),
      }),
    ],
    [1, () => ({ invocationId: genValue(rng) })],
    [1, () => genValue(rng)],
    [1, () => []],
  ])();
}

function genHttpBody(rng: Rng, t: ReturnType<typeof genHttpTarget>): Buffer | undefined {
  const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
  return rng.weighted<() => Buffer | undefined>([
    [8, () => undefined],
    [5, () => Buffer.alloc(0)],
    [
      50,
      () =>
        utf8(
          JSON.stringify(t.reference ? genReference(rng) : genInput(rng, t.svc, t.handler)) ??
            'null',
        ),
    ],
    [
      6,
      () => {
        const s = JSON.stringify(genValue(rng, 1)) ?? 'null';
        return utf8(s.slice(0, rng.int(Math.max(1, s.length))));
      },
    ],
    [
      5,
      () =>
        utf8(
          rng.pick([
            nested(MAX_JSON_DEPTH, true),
            nested(MAX_JSON_DEPTH + 1, true),
            nested(5000, true),
            nested(100_000, false),
            '{"a":'.repeat(200) + '1' + '}'.repeat(200),
          ]),
        ),
    ],
    [6, () => utf8(oddJson(rng))],
    [4, () => rng.bytes(rng.range(1, 4096))],
    [
      3,
      () =>
        Buffer.concat([
          utf8('"a'),
          Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]),
          utf8('b"'),
        ]),
    ],
    [1.5, () => utf8(`"${'x'.repeat(1024 * 1024 - 2)}"`)],
    [1, () => Buffer.alloc(1024 * 1024 + 17, '{')],
  ])();
}

function genHttpOp(rng: Rng, port: number): HttpOp {
  const t = genHttpTarget(rng);
  // Mostly the method the path is for (GET for attach/output/health, POST otherwise), else another.
  const method = rng.chance(0.8)
    ? t.getish
      ? 'GET'
      : 'POST'
    : rng.weighted([
        [10, 'POST'],
        [10, 'GET'],
        [4, 'PUT'],
        [4, 'PATCH'],
        [4, 'DELETE'],
        [4, 'OPTIONS'],
        [4, 'HEAD'],
        [2, 'PROPFIND'],
        [1, 'M-SEARCH'],
        [1, 'TRACE'],
        [1, 'post'],
        [1, 'FOO'],
        [1, 'GÉT'],
      ] as const);
  const headers: [string, string][] = [];
  const ctype = rng.weighted([
    [40, 'application/json'],
    [8, 'application/json; charset=utf-8'],
    [4, 'APPLICATION/JSON'],
    [3, 'application/vnd.api+json'],
    [3, 'text/plain'],
    [2, 'application/x-www-form-urlencoded'],
    [2, 'multipart/form-data; boundary=x'],
    [2, 'application/jsonx'],
    [2, ''],
    [2, 'application/json\u00ff'],
    [1, '*/*'],
    [12, undefined],
  ] as const);
  if (ctype !== undefined)
    headers.push([rng.pick(['content-type', 'Content-Type', 'CONTENT-TYPE']), ctype]);
  if (rng.chance(0.22)) {
    headers.push([
      'idempotency-key',
      rng.weighted<() => string>([
        [6, () => rng.pick(IDEM_POOL)],
        [1, () => 'é\u00ff\u0080'],
        [1, () => 'x'.repeat(1024)],
        [1, () => 'x'.repeat(1025)],
        [0.3, () => 'x'.repeat(20_000)],
        [1, () => ' '],
        [1, () => 'ключ'],
        [1, () => '%00'],
        [1, () => 'a\tb'],
        [1, () => '__proto__'],
      ])(),
    ]);
  }
  if (rng.chance(0.1)) {
    headers.push(
      rng.pick<[string, string]>([
        ['Authorization', 'Bearer x'],
        ['Authorization', `Bearer ${TOKEN}`],
        ['Cookie', 'a=b; __proto__=1'],
        ['Proxy-Authorization', 'Basic eDp5'],
      ]),
    );
  }
  if (rng.chance(0.08)) {
    headers.push(
      rng.pick<[string, string]>([
        [`X-Fuzz-${rng.chars(4, URL_SAFE)}`, rng.chars(8, URL_SAFE)],
        ['__proto__', '1'],
        ['constructor', 'x'],
        ['X-Long', 'v'.repeat(8000)],
        ['Bad Header', '1'],
        ['x-nul', 'a\u0000b'],
        ['x-latin1', '\u00e9\u00ff'],
        ['Host', 'second.example'],
        ['Transfer-Encoding', 'gzip'],
      ]),
    );
  }
  const upgrade = rng.chance(0.03);
  if (upgrade) {
    headers.push(['Connection', 'Upgrade'], ['Upgrade', 'websocket']);
    if (rng.chance(0.5)) {
      headers.push(
        ['Sec-WebSocket-Key', rng.pick(['dGhlIHNhbXBsZSBub25jZQ==', 'short', ''])],
        ['Sec-WebSocket-Version', rng.pick(['13', '8', 'x'])],
      );
    }
    if (rng.chance(0.3)) headers.push(['Origin', 'http://evil.example']);
  }
  let body = genHttpBody(rng, t);
  const framing = rng.weighted<Framing>([
    [88, 'length'],
    [3, 'none'],
    [4, 'chunked'],
    [1, 'bad-chunked'],
    [1, 'short-length'],
    [1.5, 'huge-length'],
    [1.5, 'abort'],
  ]);
  // The first half of this body is never valid JSON: the request the server sees (half the body;
  // Node's parser refuses the rest as a next request) is refused or reads only.
  if (framing === 'short-length') body = Buffer.from('{"a":"0123456789"}');
  if (framing === 'abort' && (body === undefined || body.length < 2))
    body = Buffer.from('{"a":"0123456789"}');
  return {
    method,
    target: t.target,
    version: rng.weighted([
      [94, 'HTTP/1.1'],
      [3, 'HTTP/1.0'],
      [3, rng.pick(['HTTP/2.0', 'HTTP/1.2', 'HTTP/9.9', 'http/1.1', 'HTTP/1'])],
    ] as const),
    host: rng.weighted([
      [96, `127.0.0.1:${port}`],
      [1.5, undefined],
      [2.5, rng.pick(['evil.example', '[', '', 'a b'])],
    ] as const),
    headers,
    body,
    framing,
    upgrade,
  };
}

/** The bytes of a request (and, for `abort`, only its first part). */
function serialize(op: HttpOp): Buffer {
  const parts: Buffer[] = [];
  const line = (s: string): void => {
    // Header values of Latin-1 characters go as those bytes (Node reads header bytes as Latin-1); others as UTF-8.
    // eslint-disable-next-line no-control-regex -- the latin1 range starts at U+0000 on purpose
    parts.push(Buffer.from(`${s}\r\n`, /[^\u0000-\u00ff]/.test(s) ? 'utf8' : 'latin1'));
  };
  parts.push(Buffer.from(`${op.method} ${op.target} ${op.version}\r\n`, 'utf8'));
  if (op.host !== undefined) line(`Host: ${op.host}`);
  for (const [k, v] of op.headers) line(`${k}: ${v}`);
  let body = op.body ?? Buffer.alloc(0);
  switch (op.framing) {
    case 'length':
      if (op.body !== undefined) line(`Content-Length: ${body.length}`);
      break;
    case 'none':
      body = Buffer.alloc(0);
      break;
    case 'chunked': {
      line('Transfer-Encoding: chunked');
      const chunk =
        body.length > 0
          ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')]
          : [];
      body = Buffer.concat([...chunk, Buffer.from('0\r\n\r\n')]);
      break;
    }
    case 'bad-chunked':
      line('Transfer-Encoding: chunked');
      body = Buffer.concat([Buffer.from('zz\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]);
      break;
    case 'short-length':
      line(`Content-Length: ${Math.floor(body.length / 2)}`);
      break;
    case 'huge-length':
      line('Content-Length: 99999999999');
      body = Buffer.alloc(0);
      break;
    case 'abort':
      line(`Content-Length: ${body.length}`);
      body = body.subarray(0, Math.floor(body.length / 2));
      break;
  }
  line('');
  return Buffer.concat([...parts, body]);
}

function describeHttp(op: HttpOp): string {
  return [
    `${op.method} ${preview(op.target, 160)} ${op.version} (host ${op.host === undefined ? 'none' : preview(op.host)}, framing ${op.framing})`,
    `headers ${preview(JSON.stringify(op.headers), 300)}`,
    `body ${preview(op.body, 200)}`,
  ].join('\n  ');
}

// ------------------------------------------------------------------ WebSocket frames

type WsKind = 'text' | 'binary' | 'bad-utf8' | 'oversize';

interface WsOp {
  kind: WsKind;
  data: string | Buffer;
}

function oddValue(rng: Rng): unknown {
  return rng.pick<unknown>([
    1,
    -1,
    1e300,
    null,
    [],
    ['a'],
    {},
    { a: 1 },
    true,
    '',
    '\ud800',
    'x'.repeat(2000),
    '__proto__',
    JSON.parse(nested(70, true)),
  ]);
}

/** A field value: sensible most of the time, else a value of the wrong type or shape. */
function field<T>(rng: Rng, good: () => T): unknown {
  return rng.chance(0.92) ? good() : oddValue(rng);
}

function genHeadersField(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [4, () => ({ 'x-a': 'b', 'X-Upper': rng.chars(5, URL_SAFE) })],
    [1, () => ['a']],
    [1, () => ({ 'bad name': 'x' })],
    [1, () => Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v']))],
    [1, () => ({ x: 1 })],
    [1, () => ({ x: 'a\u0000' })],
    [1, () => JSON.parse('{"__proto__":"x","constructor":"y"}')],
    [1, () => ({ authorization: 'Bearer x', cookie: 'a=b' })],
    [1, () => ({ x: 'v'.repeat(8193) })],
    [1, () => ({ ['h'.repeat(257)]: 'v' })],
    [1, () => 'x-a: b'],
  ])();
}

function genDelayField(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [3, () => rng.pick([0, 1, 10, 250, 1000, 0.5])],
    [3, () => decodeURIComponent(rng.pick(SHORT_DELAYS))],
    [3, () => rng.pick([-1, 1e300, 2 ** 53, 31_536_000_001])],
    [3, () => rng.pick(BAD_DELAYS.filter((d) => !d.includes('%')))],
    [1, () => oddValue(rng)],
  ])();
}

function genReferenceFields(rng: Rng): Record<string, unknown> {
  return rng.weighted<() => Record<string, unknown>>([
    [4, () => ({ invocationId: field(rng, () => invocationIdFor(rng)) })],
    [
      2,
      () => ({
        workflow: field(rng, () => (rng.chance(0.8) ? 'fz_flow' : rng.pick(ODD_NAMES))),
        key: field(rng, () => rng.pick(KEY_POOL)),
      }),
    ],
    [
      2,
      () => ({
        service: field(rng, () => rng.pick(SERVICES)),
        handler: field(rng, () => rng.pick(['echo', 'put', 'secret', 'register', 'run', 'nope'])),
        idempotencyKey: field(rng, () => rng.pick(IDEM_POOL)),
        ...(rng.chance(0.5) ? { key: field(rng, () => rng.pick(KEY_POOL)) } : {}),
      }),
    ],
    [1, () => ({})],
  ])();
}

function genWsOp(rng: Rng, i: number): WsOp {
  const kind = rng.weighted([
    [80, 'object'],
    [4, 'non-json'],
    [3, 'non-object'],
    [4, 'binary'],
    [3, 'deep'],
    [3, 'proto'],
    [1, 'big'],
    [1, 'oversize'],
    [1, 'bad-utf8'],
  ] as const);
  const id = `f${i}`;
  switch (kind) {
    case 'non-json':
      return {
        kind: 'text',
        data: rng.pick([
          'not json {',
          '',
          ' ',
          '{',
          `{"id":"${id}"`,
          rng.chars(rng.range(1, 40), URL_SAFE + '{}[]":,'),
          "{'id':'x'}",
        ]),
      };
    case 'non-object':
      return {
        kind: 'text',
        data: rng.pick(['[1,2,3]', 'null', '"s"', '1', 'true', `[{"id":"${id}","type":"ping"}]`]),
      };
    case 'binary':
      return {
        kind: 'binary',
        data: rng.chance(0.5)
          ? Buffer.from(JSON.stringify({ id, type: 'ping' }))
          : rng.bytes(rng.range(0, 300)),
      };
    case 'deep':
      return {
        kind: 'text',
        data: rng.pick([
          nested(5000, true),
          `{"id":"${id}","type":"call","service":"fz_echo","handler":"echo","input":${nested(MAX_JSON_DEPTH + 5, true)}}`,
          `{"id":"${id}","type":"call","service":"fz_echo","handler":"echo","input":${nested(MAX_JSON_DEPTH - 1, true)}}`,
          `{"id":"${id}","type":"ping","x":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`,
          nested(200_000, false),
        ]),
      };
    case 'proto':
      return {
        kind: 'text',
        data: rng.pick([
          `{"id":"${id}","__proto__":{"type":"call","service":"fz_echo","handler":"secret","input":1}}`,
          `{"__proto__":{"id":"${id}"},"type":"ping"}`,
          `{"id":"${id}","type":"call","service":"fz_echo","handler":"echo","input":{"__proto__":{"polluted":1}},"__proto__":null}`,
          `{"id":"${id}","type":"submit","workflow":"fz_flow","key":"__proto__","input":{"constructor":{"prototype":{"x":1}}}}`,
          `{"id":"${id}","type":"call","service":"__proto__","handler":"constructor"}`,
          `{"id":"${id}","type":"call","service":"fz_box","handler":"put","key":"constructor","input":1}`,
        ]),
      };
    case 'big':
      return {
        kind: 'text',
        data: JSON.stringify({
          id,
          type: 'call',
          service: 'fz_echo',
          handler: 'echo',
          input: 'x'.repeat(MAX_FRAME - 200),
        }),
      };
    case 'oversize':
      return {
        kind: 'oversize',
        data: JSON.stringify({
          id,
          type: 'call',
          service: 'fz_echo',
          handler: 'echo',
          input: 'x'.repeat(MAX_FRAME + rng.int(1000)),
        }),
      };
    case 'bad-utf8':
      return {
        kind: 'bad-utf8',
        data: Buffer.concat([
          Buffer.from(`{"id":"${id}","type":"ping","x":"`),
          Buffer.from([0xff, 0xc0, 0xed, 0xa0, 0x80]),
          Buffer.from('"}'),
        ]),
      };
    case 'object':
      break;
  }
  const type = rng.weighted([
    [14, 'call'],
    [8, 'send'],
    [6, 'submit'],
    [7, 'attach'],
    [6, 'output'],
    [5, 'subscribe'],
    [3, 'unsubscribe'],
    [4, 'resolveAwakeable'],
    [4, 'rejectAwakeable'],
    [4, 'cancel'],
    [5, 'ping'],
    [6, 'garbage'],
  ] as const);
  const f: Record<string, unknown> = {};
  const frameId = rng.weighted<() => unknown>([
    [85, () => id],
    [3, () => undefined],
    [2, () => i],
    [1, () => null],
    [1, () => [id]],
    [1, () => ({ id })],
    [1, () => ''],
    [1, () => 'i'.repeat(129)],
    [1, () => id.padEnd(128, 'x')],
    [2, () => `\ud800${id}`],
    [1, () => `__proto__${id}`],
  ])();
  if (frameId !== undefined) f['id'] = frameId;
  f['type'] =
    type === 'garbage'
      ? rng.pick<unknown>([
          'launch',
          '',
          'CALL',
          '__proto__',
          'constructor',
          'toString',
          'hasOwnProperty',
          1,
          null,
          ['call'],
          { call: 1 },
          true,
        ])
      : rng.chance(0.97)
        ? type
        : oddValue(rng);
  const svc = rng.chance(0.9) ? rng.pick(SERVICES) : rng.pick(ODD_NAMES);
  switch (type) {
    case 'call':
    case 'send': {
      f['service'] = field(rng, () => svc);
      f['handler'] = field(rng, () =>
        HANDLERS[svc] && rng.chance(0.85) ? rng.pick(HANDLERS[svc]) : rng.pick(ODD_NAMES),
      );
      if (KEYED.has(svc) ? rng.chance(0.9) : rng.chance(0.1))
        f['key'] = field(rng, () =>
          rng.pick([...KEY_POOL, '', '\u0000', 'k'.repeat(1025), '\ud800', '__proto__']),
        );
      if (rng.chance(0.85))
        f['input'] = genInput(
          rng,
          svc,
          typeof f['handler'] === 'string' ? f['handler'] : undefined,
        );
      if (rng.chance(0.2))
        f['idempotencyKey'] = field(rng, () =>
          rng.pick([...IDEM_POOL, '\ud800', 'x'.repeat(1025), '']),
        );
      if (rng.chance(0.15)) f['headers'] = genHeadersField(rng);
      if (rng.chance(type === 'send' ? 0.35 : 0.08)) f['delay'] = genDelayField(rng);
      break;
    }
    case 'submit':
      f['workflow'] = field(rng, () =>
        rng.chance(0.8) ? 'fz_flow' : rng.pick([...SERVICES, ...ODD_NAMES]),
      );
      f['key'] = field(rng, () => rng.pick([...KEY_POOL, '', '\ud800', 'k'.repeat(1025)]));
      if (rng.chance(0.8)) f['input'] = genValue(rng);
      if (rng.chance(0.2)) f['idempotencyKey'] = field(rng, () => rng.pick(IDEM_POOL));
      if (rng.chance(0.2)) f['delay'] = genDelayField(rng);
      break;
    case 'attach':
    case 'output':
    case 'subscribe':
      Object.assign(f, genReferenceFields(rng));
      break;
    case 'unsubscribe':
      f['subscription'] = field(rng, () =>
        seen.wsIds.length > 0 && rng.chance(0.7) ? rng.pick(seen.wsIds) : `f${rng.int(i + 1)}`,
      );
      break;
    case 'resolveAwakeable':
      f['awakeableId'] = field(rng, () => awakeableIdFor(rng));
      if (rng.chance(0.7)) f['value'] = genValue(rng);
      break;
    case 'rejectAwakeable':
      f['awakeableId'] = field(rng, () => awakeableIdFor(rng));
      if (rng.chance(0.8)) f['reason'] = field(rng, () => rng.chars(rng.range(0, 20), URL_SAFE));
      break;
    case 'cancel': {
      const known = seen.tokens.length > 0 && rng.chance(0.5) ? rng.pick(seen.tokens) : undefined;
      f['invocationId'] = field(rng, () => known?.id ?? invocationIdFor(rng));
      if (rng.chance(0.8)) f['token'] = field(rng, () => known?.token ?? rng.chars(22, URL_SAFE));
      break;
    }
    case 'ping':
    case 'garbage':
      break;
  }
  if (rng.chance(0.1)) f[rng.pick(['extra', 'constructor', 'then', 'toJSON_', ''])] = genValue(rng);
  return { kind: 'text', data: JSON.stringify(f) };
}

// ------------------------------------------------------------------ admin requests

const ADMIN_BAD_AUTH = [
  undefined,
  '',
  'Bearer',
  'Bearer wrong',
  `bearer ${TOKEN}`,
  `Bearer ${TOKEN}X`,
  `Bearer ${TOKEN.slice(0, -1)}`,
  `Basic ${Buffer.from(`fuzz:${TOKEN}`).toString('base64')}`,
  `Bearer  ${TOKEN}`,
  `Bearer ${TOKEN}\u00ff`,
  `Token ${TOKEN}`,
  `Bearer ${'x'.repeat(5000)}`,
  TOKEN,
];

interface AdminOp extends HttpOp {
  authorized: boolean;
}

function genAdminOp(rng: Rng, port: number): AdminOp {
  const authorized = rng.chance(0.55);
  const auth = authorized ? `Bearer ${TOKEN}` : rng.pick(ADMIN_BAD_AUTH);
  const method = rng.weighted([
    [35, 'GET'],
    [20, 'PATCH'],
    [25, 'POST'],
    [4, 'PUT'],
    [4, 'DELETE'],
    [4, 'HEAD'],
    [4, 'OPTIONS'],
    [2, 'PROPFIND'],
  ] as const);
  const stateful = (): string =>
    rng.chance(0.7)
      ? rng.pick(['fz_box', 'fz_flow'])
      : rng.chance(0.5)
        ? rng.pick(['fz_echo', 'fz_person'])
        : rng.pick(ODD_NAMES);
  let target = rng.weighted<() => string>([
    [10, () => '/health'],
    [
      3,
      () =>
        rng.pick([
          '/health?x=1',
          '/health/',
          '//health',
          '/HEALTH',
          '/health#x',
          '/%68ealth',
          '/./health',
        ]),
    ],
    [
      15,
      () =>
        `/invocations${
          rng.chance(0.7)
            ? `?${[
                rng.chance(0.4) ? `service=${rng.pick([...SERVICES, ...PERCENT])}` : '',
                rng.chance(0.3) ? `key=${rng.pick([...KEY_POOL, '%00', ''])}` : '',
                rng.chance(0.4)
                  ? `status=${rng.pick(['completed', 'running', 'paused', 'nope', '', '%ED%A0%80'])}`
                  : '',
                rng.chance(0.4)
                  ? `limit=${rng.pick(['1', '0', '-1', '1e300', 'abc', '99999999', '5'])}`
                  : '',
              ]
                .filter(Boolean)
                .join('&')}`
            : ''
        }`,
    ],
    [12, () => `/invocations/${urlSegment(invocationIdFor(rng))}`],
    [
      15,
      () =>
        `/invocations/${urlSegment(invocationIdFor(rng))}/${rng.pick(['cancel', 'kill', 'pause', 'resume', 'purge', 'purge', '__proto__', 'constructor', 'nope'])}`,
    ],
    [18, () => `/services/${stateful()}/state/${keySeg(rng)}`],
    [
      8,
      () =>
        `/${Array.from({ length: rng.range(0, 4) }, () => (rng.chance(0.3) ? rng.pick(['invocations', 'services', 'state', 'health']) : garbageSeg(rng))).join('/')}`,
    ],
    [
      3,
      () =>
        rng.pick([
          '*',
          'http://[',
          `http://127.0.0.1:${port}/health`,
          'http://x/invocations',
          '/?',
        ]),
    ],
  ])();
  if (target.startsWith('/') && rng.chance(0.1)) {
    const segs = target.split('/');
    segs[1 + rng.int(Math.max(1, segs.length - 1))] = garbageSeg(rng);
    target = segs.join('/');
  }
  const headers: [string, string][] = [];
  if (auth !== undefined)
    headers.push([rng.pick(['Authorization', 'authorization', 'AUTHORIZATION']), auth]);
  const ctype = rng.weighted([
    [60, 'application/json'],
    [5, 'application/json; charset=utf-8'],
    [5, 'text/plain'],
    [4, 'application/x-www-form-urlencoded'],
    [3, 'application/vnd.api+json'],
    [3, 'application/jsonx'],
    [20, undefined],
  ] as const);
  if (ctype !== undefined) headers.push(['Content-Type', ctype]);
  const body = rng.weighted<() => Buffer | undefined>([
    [15, () => undefined],
    [
      30,
      () =>
        Buffer.from(
          JSON.stringify({
            a: genValue(rng),
            b: null,
            ...(rng.chance(0.3) ? { [rng.pick(['', 'constructor', '\ud800'])]: 1 } : {}),
          }),
        ),
    ],
    [2, () => Buffer.from('{"__proto__":{"polluted":1},"v":1}')],
    [
      8,
      () =>
        Buffer.from(rng.pick(['[]', 'null', '1', '"s"', '{}', '{"__proto__":{"x":1}}', '{"":1}'])),
    ],
    [8, () => Buffer.from(oddJson(rng))],
    [
      4,
      () =>
        Buffer.from(rng.pick([nested(MAX_JSON_DEPTH + 1, true), `{"a":${nested(5000, true)}}`])),
    ],
    [4, () => rng.bytes(rng.range(1, 2000))],
    [1.5, () => Buffer.from(`{"a":"${'x'.repeat(1024 * 1024)}"}`)],
  ])();
  return {
    method,
    target,
    version: 'HTTP/1.1',
    host: `127.0.0.1:${port}`,
    headers,
    body,
    framing: body === undefined ? 'none' : rng.chance(0.95) ? 'length' : 'chunked',
    upgrade: false,
    authorized,
  };
}

// ------------------------------------------------------------------ the WebSocket client

type Frame = Record<string, unknown>;

class FuzzSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private wake: () => void = () => undefined;
  readonly ws: WebSocket;
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      let f: Frame;
      try {
        f = JSON.parse(String(data)) as Frame;
      } catch {
        f = { unparsable: String(data).slice(0, 200), binary: isBinary };
      }
      this.frames.push(f);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => undefined);
  }
  static async open(url: string): Promise<FuzzSocket> {
    const ws = new WebSocket(url);
    const s = new FuzzSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return s;
  }
  /** Waits until `done()` holds (checked on every frame and close), up to `ms`. */
  async until(what: string, done: () => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; frames ${preview(JSON.stringify(this.frames), 600)}; closed ${JSON.stringify(this.closed)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  close(): void {
    this.ws.terminate();
  }
}

// ------------------------------------------------------------------ the test

/** Whether `p` settles within `ms` (it is left running otherwise). */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe(`seeded fuzz of the HTTP, WebSocket and admin ingresses (LK_FUZZ_SEED=${SEED})`, () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let redis: RawRedis;
  let port: number;
  let adminPort: number;
  let socket: FuzzSocket | undefined;
  const sockets: FuzzSocket[] = [];
  /** Errors the server logged (an unexpected failure is logged before its 500 is answered). */
  const loggedErrors: string[] = [];
  /** Unhandled errors in the test process (the server runs in it). */
  const processErrors: string[] = [];
  const onProcessError = (e: unknown): void => {
    processErrors.push((e as Error)?.stack ?? String(e));
  };
  const stats = {
    refused: 0,
    accepted: 0,
    settles: 0,
    nodeBare: 0,
    noAnswer: 0,
    statuses: new Map<number | string, number>(),
  };
  const count = (k: number | string): void => {
    stats.statuses.set(k, (stats.statuses.get(k) ?? 0) + 1);
  };

  /** The settled keyspace the next refused request is checked against; undefined once an accepted request may have changed it. */
  let baseline: Keyspace | undefined;

  const where = (phase: string, i: number): string => `[LK_FUZZ_SEED=${SEED} ${phase} #${i}]`;

  /**
   * Runs one request: `run` sends it and judges its answer (`refused`, or `uncertain` when no answer
   * came). A refused request must leave the keyspace exactly as it was; after an accepted one that
   * changed it, the keyspace settles again before the next check.
   */
  async function step(
    label: string,
    describeOp: () => string,
    run: () => Promise<{ refused: boolean; uncertain?: boolean }>,
  ): Promise<void> {
    if (!baseline) {
      baseline = await settledKeyspace(redis, prefix);
      stats.settles++;
    }
    const before: Keyspace = baseline;
    // Until this request is judged, the baseline may be stale (also when an assertion fails).
    baseline = undefined;
    let r: { refused: boolean; uncertain?: boolean };
    try {
      r = await run();
    } catch (e) {
      const errs = loggedErrors.splice(0);
      if (errs.length > 0 && e instanceof Error)
        e.message += `\n  the server logged: ${errs.join('\n')}`;
      throw e;
    }
    const errs = [...loggedErrors.splice(0), ...processErrors.splice(0)];
    if (errs.length > 0) {
      expect.fail(
        `${label} the server logged an error (an unexpected failure, answered 500 if it could be)\n  ${describeOp()}\n  ${errs.join('\n')}`,
      );
    }
    // A request that got no answer (the client went away mid-body): nothing may happen later either.
    const now = r.uncertain
      ? await settledKeyspace(redis, prefix)
      : await snapshotKeyspace(redis, prefix);
    const d = keyspaceDiff(before, now);
    const same = d.added.length + d.removed.length + d.changed.length === 0;
    if (r.refused) {
      stats.refused++;
      if (!same) {
        const keys = await describeKeys(redis, [...d.added, ...d.changed]);
        expect.fail(
          `${label} a refused request changed the keyspace: ${JSON.stringify(d)}\n  ${describeOp()}\n  ${keys}`,
        );
      }
    } else stats.accepted++;
    if (same) baseline = now;
  }

  /** A good call works, /health answers, the admin API answers. */
  async function expectHealthy(tag: string): Promise<void> {
    const h = await fetch(`${server.url}/health`);
    expect(h.status, `${tag} GET /health`).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const value = { healthy: tag, n: [1, 2, 3] };
    const r = await post(server.url, '/fz_echo/echo', value);
    expect(r, `${tag} a good call`).toMatchObject({ status: 200, body: value });
    const z1 = await post(server.url, '/fz_person/register', { name: 'Ada', age: 36 });
    expect(z1, `${tag} a good call (zod)`).toMatchObject({ status: 200, body: 'Ada (36)' });
    const a = await fetch(`${server.adminUrl}/health`);
    expect(a.status, `${tag} admin GET /health`).toBe(200);
    await a.text();
    // Each error is reported once (by the first check after it), not by every later one.
    expect(
      loggedErrors.splice(0),
      `${tag} the server logged errors (an unexpected failure, answered 500 if it could be)`,
    ).toEqual([]);
    expect(processErrors.splice(0), `${tag} unhandled errors in the test process`).toEqual([]);
    baseline = undefined; // the good calls wrote keys
  }

  /** Checks an HTTP answer (ingress or admin) and says whether the request was refused. */
  function judgeHttp(
    label: string,
    op: HttpOp,
    ans: RawAnswer | RawNoAnswer,
  ): { refused: boolean; uncertain?: boolean } {
    const answer =
      ans.kind === 'answer'
        ? `${ans.status} ${preview(ans.head, 300)} ${preview(ans.body, 300)}`
        : preview(ans.partial);
    const desc = (): string => `${label}\n  ${describeHttp(op)}\n  answer ${answer}`;
    if (ans.kind === 'no-answer') {
      count(`no-answer${ans.error ? ` (${ans.error})` : ''}`);
      stats.noAnswer++;
      // Only a request the client abandoned mid-body may go unanswered.
      expect(
        op.framing === 'abort',
        `no answer (${ans.error ?? 'connection closed'}): ${desc()}`,
      ).toBe(true);
      return { refused: true, uncertain: true };
    }
    const s = ans.status;
    count(s);
    const text = ans.body.toString('utf8');
    expect(
      text.includes(PRIVATE_MARKER),
      `the private handler's result reached a client: ${desc()}`,
    ).toBe(false);
    if (s === 101) {
      expect(op.upgrade, `101 without an upgrade request: ${desc()}`).toBe(true);
      return { refused: false };
    }
    if (s >= 200 && s < 300) {
      const id = ans.headers['x-restate-id'];
      if (id && !seen.ids.includes(id)) seen.ids.push(id);
      return { refused: false };
    }
    const ctype = ans.headers['content-type'] ?? '';
    let body: unknown;
    if (/^application\/json/.test(ctype) && text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        expect.fail(`an error answer that is not JSON: ${desc()}`);
      }
    }
    const bufferFull =
      s === 503 && (body as { errorCode?: unknown } | undefined)?.errorCode === 'BODY_BUFFER_FULL';
    expect((s >= 400 && s < 500) || bufferFull, `status ${s}: ${desc()}`).toBe(true);
    if (op.method === 'HEAD') return { refused: true }; // no body to check
    if (body === undefined) {
      // Node's own HTTP parser refusing the request (a bare 400/431, connection closed), or the
      // `ws` library refusing a malformed handshake on the WebSocket path (a text/html 4xx).
      const nodeBare =
        (s === 400 || s === 431) &&
        !/json/.test(ctype) &&
        text === '' &&
        /close/i.test(ans.headers['connection'] ?? '');
      const wsHandshake = op.upgrade && /^text\/html/.test(ctype);
      expect(nodeBare || wsHandshake, `an error answer without a JSON body: ${desc()}`).toBe(true);
      stats.nodeBare++;
      return { refused: true };
    }
    expect(body, `error body: ${desc()}`).toMatchObject({
      code: s,
      errorCode: expect.any(String),
      message: expect.any(String),
    });
    return { refused: true };
  }

  beforeAll(async () => {
    process.on('unhandledRejection', onProcessError);
    process.on('uncaughtException', onProcessError);
    const error = (...args: unknown[]): void => {
      loggedErrors.push(args.map((a) => (a as Error)?.stack ?? String(a)).join(' '));
    };
    const logger = { ...quietLogger, error };
    server = await startServer(redisTarget, prefix, DEFS, {
      store: { stalledIntervalMs: 600_000 },
      serve: { admin: { port: 0, token: TOKEN }, logger },
    });
    port = server.port;
    adminPort = Number(new URL(server.adminUrl!).port);
    redis = rawClient(redisTarget);
    await expectHealthy('start');
  });

  afterAll(async () => {
    for (const s of sockets.splice(0)) s.close();
    // Bounded: the last test already reports a close that does not finish.
    if (server) await withDeadline(server.close(), 5000);
    redis?.disconnect();
    await deletePrefix(redisTarget, prefix);
    process.off('unhandledRejection', onProcessError);
    process.off('uncaughtException', onProcessError);
    if (VERBOSE)
      console.info(
        `[fuzz seed ${SEED}]`,
        { ...stats, statuses: Object.fromEntries(stats.statuses) },
        `ids seen: ${seen.ids.length}`,
      );
  });

  it(`${COUNT.http} random HTTP requests: no 5xx, JSON errors, no key written by a refused request`, async () => {
    const rng = new Rng(SEED ^ 0x48545450);
    for (let i = 0; i < COUNT.http; i++) {
      const op = genHttpOp(rng, port);
      const label = where('http', i);
      await step(
        label,
        () => describeHttp(op),
        async () => {
          const ans = await rawHttp(port, serialize(op), {
            head: op.method === 'HEAD',
            ...(op.framing === 'abort' ? { abortAfterMs: 30 } : {}),
          });
          const got =
            ans.kind === 'answer' ? `${ans.status} ${preview(ans.body, 100)}` : 'no answer';
          trace(
            () =>
              `${label} ${op.method} ${preview(op.target, 80)} ${op.framing} ${preview(op.body, 40)} -> ${got}`,
          );
          return judgeHttp(label, op, ans);
        },
      );
      if ((i + 1) % HEALTH_EVERY === 0) await expectHealthy(`${label} health`);
    }
    await expectHealthy(where('http', COUNT.http));
  });

  it(`${COUNT.upgrades} WebSocket upgrades on wrong paths or from foreign origins are refused (404/403), the others open`, async () => {
    const rng = new Rng(SEED ^ 0x55504752);
    const base = server.url.replace(/^http/, 'ws');
    const own = `http://127.0.0.1:${port}`;
    const fixed: [string, string | undefined][] = [
      ['/', undefined],
      ['/ws2', undefined],
      ['/ws', 'http://evil.example'],
      ['/ws', own],
    ];
    const cases = [
      ...fixed,
      ...Array.from({ length: COUNT.upgrades - fixed.length }, (): [string, string | undefined] => [
        rng.pick([
          '/ws',
          '/ws',
          '/',
          '/ws2',
          '/ws/',
          '/WS',
          '/ws?x=1',
          '//ws',
          '/%77s',
          '/restate/ws',
          '/fz_echo/echo',
          '/ws?',
        ]),
        rng.pick([
          undefined,
          undefined,
          'http://evil.example',
          'null',
          own,
          own.toUpperCase(),
          'http://127.0.0.1:1',
          'garbage',
          `https://127.0.0.1:${port}`,
        ]),
      ]),
    ];
    for (const [i, [path, origin]] of cases.entries()) {
      const label = `${where('upgrade', i)} ${path} origin ${origin ?? '(none)'}`;
      const pathOk = path.split('?')[0] === '/ws';
      let originOk = origin === undefined;
      try {
        originOk ||= new URL(origin!.toLowerCase()).host === `127.0.0.1:${port}`;
      } catch {
        // not a URL: a foreign origin
      }
      const expected = !pathOk ? 404 : !originOk ? 403 : 101;
      await step(
        label,
        () => label,
        async () => {
          const ws = new WebSocket(`${base}${path}`, origin !== undefined ? { origin } : {});
          const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
            ws.once('open', () => resolve({ status: 101, body: '' }));
            ws.once('unexpected-response', (_req, res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            });
            ws.once('error', reject);
          });
          ws.terminate();
          count(`upgrade ${got.status}`);
          expect(got.status, label).toBe(expected);
          if (expected !== 101) {
            expect(JSON.parse(got.body), label).toMatchObject({
              code: expected,
              errorCode: expected === 404 ? 'NOT_FOUND' : 'ORIGIN_NOT_ALLOWED',
              message: expect.any(String),
            });
          }
          return { refused: expected !== 101 };
        },
      );
    }
  });

  it(`${COUNT.ws} random WebSocket frames: an answer per id, no error frame with code 500, no key written by a refused frame`, async () => {
    const rng = new Rng(SEED ^ 0x57534653);
    const url = `${server.url.replace(/^http/, 'ws')}/ws`;
    const open = async (): Promise<FuzzSocket> => {
      if (!socket || socket.closed) {
        socket = await FuzzSocket.open(url);
        sockets.push(socket);
      }
      return socket;
    };
    for (let i = 0; i < COUNT.ws; i++) {
      const op = genWsOp(rng, i);
      const label = where('ws', i);
      let answers: Frame[] = [];
      const desc = (): string =>
        `${op.kind} frame ${preview(op.data, 400)}\n  answers ${preview(JSON.stringify(answers), 600)}`;
      await step(label, desc, async () => {
        const s = await open();
        expect(s.frames, `${label} frames nobody asked for (before sending)\n  ${desc()}`).toEqual(
          [],
        );
        if (op.kind === 'oversize' || op.kind === 'bad-utf8') {
          s.ws.send(op.data, { binary: false });
          await s.until(`${label} the close`, () => s.closed !== undefined);
          const want = op.kind === 'oversize' ? 1009 : 1007;
          expect(s.closed!.code, `${label} close code\n  ${desc()}`).toBe(want);
          expect(s.frames, `${label} no answer frame before the close\n  ${desc()}`).toEqual([]);
          count(`ws close ${s.closed!.code}`);
          return { refused: true };
        }
        // What the server will parse: the text as UTF-8 (a raw lone surrogate becomes U+FFFD).
        let expectedId: string | undefined;
        let sentType: unknown;
        if (op.kind === 'text') {
          const text = Buffer.from(op.data as string, 'utf8').toString('utf8');
          // The frame's own object is one level more than the values it carries.
          if (!jsonTooDeep(text, MAX_JSON_DEPTH + 1)) {
            try {
              const f = JSON.parse(text) as unknown;
              if (typeof f === 'object' && f !== null && !Array.isArray(f)) {
                const id = (f as Frame)['id'];
                if (typeof id === 'string' && id.length >= 1 && id.length <= 128) expectedId = id;
                sentType = (f as Frame)['type'];
              }
            } catch {
              // not JSON: answered without an id
            }
          }
        }
        s.ws.send(op.data, { binary: op.kind === 'binary' });
        answers = s.frames;
        const isFinal = (f: Frame): boolean =>
          f['type'] === 'error' ||
          f['type'] === 'result' ||
          f['type'] === 'pong' ||
          f['type'] === 'ok' ||
          f['type'] === 'unsubscribed' ||
          (f['type'] === 'accepted' && sentType !== 'call');
        let checked = 0;
        let refused = false;
        const checkNew = (): boolean => {
          for (; checked < s.frames.length; checked++) {
            const f = s.frames[checked]!;
            const fd = `${label} answer ${preview(JSON.stringify(f), 400)}\n  to ${desc()}`;
            expect(
              JSON.stringify(f).includes(PRIVATE_MARKER),
              `the private handler's result reached a client: ${fd}`,
            ).toBe(false);
            expect(typeof f['type'], `an answer without a type: ${fd}`).toBe('string');
            if (expectedId !== undefined)
              expect(f['id'], `an answer to another request: ${fd}`).toBe(expectedId);
            else {
              expect(
                f,
                `an answer with an id to a frame without a usable one: ${fd}`,
              ).not.toHaveProperty('id');
              expect(f['type'], fd).toBe('error');
            }
            if (f['type'] === 'error') {
              refused = true;
              expect(f, `error frame: ${fd}`).toMatchObject({
                code: expect.any(Number),
                errorCode: expect.any(String),
                message: expect.any(String),
              });
              const code = f['code'] as number;
              expect(code >= 400 && code < 500, `error frame with code ${code}: ${fd}`).toBe(true);
              count(`ws error ${code} ${String(f['errorCode'])}`);
            } else {
              count(`ws ${String(f['type'])}`);
            }
            if (f['type'] === 'result' && f['ok'] === false) {
              expect(
                (f['error'] as { code?: unknown } | undefined)?.code,
                `a failed result: ${fd}`,
              ).not.toBe(500);
            }
            if (f['type'] === 'accepted') {
              const inv = f['invocationId'];
              expect(typeof inv, `accepted without an invocation id: ${fd}`).toBe('string');
              if (!seen.ids.includes(inv as string)) seen.ids.push(inv as string);
              if (typeof f['cancelToken'] === 'string')
                seen.tokens.push({ id: inv as string, token: f['cancelToken'] });
            }
            if (f['type'] === 'subscribed' && expectedId !== undefined) seen.wsIds.push(expectedId);
            if (isFinal(f)) {
              checked++;
              return true;
            }
          }
          return false;
        };
        let done = false;
        await s.until(
          `${label} the answer to ${desc()}`,
          () => (done ||= checkNew()) || s.closed !== undefined,
        );
        expect(s.closed, `${label} the socket closed\n  ${desc()}`).toBeUndefined();
        // Nothing more may follow the final answer (checked before the next frame is sent).
        answers = s.frames.splice(0, checked);
        trace(
          () => `${label} ${preview(op.data, 120)} -> ${preview(JSON.stringify(answers), 200)}`,
        );
        return { refused };
      });
      if ((i + 1) % HEALTH_EVERY === 0) {
        await expectHealthy(`${label} health`);
        const s = await open();
        const id = `health-${i}`;
        s.ws.send(
          JSON.stringify({ id, type: 'call', service: 'fz_echo', handler: 'echo', input: id }),
        );
        await s.until(`${label} a good call over the socket`, () =>
          s.frames.some((f) => f['id'] === id && f['type'] === 'result'),
        );
        expect(
          s.frames.find((f) => f['type'] === 'result'),
          label,
        ).toMatchObject({ id, ok: true, value: id });
        s.frames.splice(0);
      }
    }
    await expectHealthy(where('ws', COUNT.ws));
  });

  it(`${COUNT.admin} random admin requests: 401 without the token (but GET /health), no 5xx, no key written by a refused request`, async () => {
    const rng = new Rng(SEED ^ 0x41444d4e);
    for (let i = 0; i < COUNT.admin; i++) {
      const op = genAdminOp(rng, adminPort);
      const label = where('admin', i);
      const desc = (): string => `${describeHttp(op)}\n  authorized: ${op.authorized}`;
      await step(label, desc, async () => {
        const ans = await rawHttp(adminPort, serialize(op), { head: op.method === 'HEAD' });
        const r = judgeHttp(label, op, ans);
        if (ans.kind === 'answer') {
          // Node's own parser refusing the request: a bare 400/431, before any route or token check.
          const nodeBare =
            ans.headers['content-type'] === undefined && (ans.status === 400 || ans.status === 431);
          const health = op.method === 'GET' && op.target === '/health';
          if (health) expect(ans.status, `${label} GET /health\n  ${desc()}`).toBe(200);
          else if (!op.authorized && !nodeBare) {
            expect(ans.status, `${label} without the token\n  ${desc()}`).toBe(401);
            if (op.method !== 'HEAD')
              expect(JSON.parse(ans.body.toString()), label).toMatchObject({
                code: 401,
                errorCode: 'UNAUTHORIZED',
              });
          } else expect(ans.status, `${label} with the token\n  ${desc()}`).not.toBe(401);
        }
        return r;
      });
      if ((i + 1) % HEALTH_EVERY === 0) await expectHealthy(`${label} health`);
    }
    await expectHealthy(where('admin', COUNT.admin));
  });

  it('the server still serves, logged no error, and the process saw no unhandled error', async () => {
    await expectHealthy('end');
    // Every accepted invocation completed (nothing stuck in the mailbox).
    await settledKeyspace(redis, prefix);
    expect(stats.refused, 'the fuzz exercised refusals').toBeGreaterThan(0);
    expect(stats.accepted, 'the fuzz exercised accepted requests').toBeGreaterThan(0);
  });

  it('closes gracefully within 20 s: no connection the fuzz opened is left holding the server', async () => {
    for (const s of sockets.splice(0)) s.close();
    const closed = await withDeadline(server.close(), 20_000);
    expect(
      closed,
      `[LK_FUZZ_SEED=${SEED}] server.close() did not finish within 20 s: a connection is still open on the server`,
    ).toBe(true);
    expect(loggedErrors.splice(0), 'the server logged errors while closing').toEqual([]);
  });
});
