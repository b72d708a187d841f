/**
 * Fuzzing helpers: a seeded PRNG, a raw HTTP/1.1 client over `node:net` (any method, any request
 * target, any header bytes; it parses the status line, headers and body itself), and keyspace
 * comparison (a diff of two `snapshotKeyspace` snapshots, a look at changed keys).
 */
import { connect } from 'node:net';
import type { RawRedis } from './redis.js';
import type { Keyspace } from './keyspace.js';

/** The fixed seed used when `LK_FUZZ_SEED` is not set. */
export const DEFAULT_FUZZ_SEED = 20261203;

/** The fuzz seed: `LK_FUZZ_SEED` (an integer, or any string, hashed), else {@link DEFAULT_FUZZ_SEED}. */
export function fuzzSeed(): number {
  const raw = process.env['LK_FUZZ_SEED'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_FUZZ_SEED;
  if (/^\d+$/.test(raw.trim())) return Number(BigInt(raw.trim()) % 4294967296n);
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < raw.length; i++) h = Math.imul(h ^ raw.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** mulberry32: a small, fast, deterministic PRNG. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** One of `choices`, each with its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of choices) {
      if ((r -= w) < 0) return v;
    }
    return choices[choices.length - 1]![1];
  }
  /** `len` characters drawn from `alphabet`. */
  chars(len: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  bytes(len: number): Buffer {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = this.int(256);
    return b;
  }
}

/** Keys added, removed and changed from `before` to `after` (empty when equal). */
export function keyspaceDiff(
  before: Keyspace,
  after: Keyspace,
): { added: string[]; removed: string[]; changed: string[] } {
  const added = Object.keys(after).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in after));
  const changed = Object.keys(after).filter((k) => k in before && before[k] !== after[k]);
  return { added, removed, changed };
}

/** A parsed HTTP answer read off a raw socket. */
export interface RawAnswer {
  kind: 'answer';
  status: number;
  reason: string;
  /** Header names lower-cased; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
  /** The head as received (for messages). */
  head: string;
}

/** The connection ended (or was reset) before a whole answer arrived. */
export interface RawNoAnswer {
  kind: 'no-answer';
  /** What arrived before it ended. */
  partial: string;
  error?: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Decodes a chunked body; undefined while incomplete. */
function dechunk(buf: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = buf.indexOf('\r\n', i);
    if (nl < 0) return undefined;
    const size = parseInt(buf.subarray(i, nl).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) return Buffer.concat(parts); // malformed: take what there is
    if (size === 0) return Buffer.concat(parts);
    if (buf.length < nl + 2 + size + 2) return undefined;
    parts.push(buf.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
}

/**
 * Sends `request` (bytes as given) on a fresh TCP connection and reads one answer: the status
 * line, headers, and a body framed by Content-Length, chunked encoding, or the connection's end
 * (no body for HEAD requests and 1xx/204/304 answers). `abortAfterMs`: write only `request`, then
 * drop the connection after that long and expect no answer.
 */
export function rawHttp(
  port: number,
  request: Buffer,
  opts: { head?: boolean; timeoutMs?: number; abortAfterMs?: number } = {},
): Promise<RawAnswer | RawNoAnswer> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (v: RawAnswer | RawNoAnswer | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `no answer within ${timeoutMs} ms; got ${JSON.stringify(buf.subarray(0, 300).toString('latin1'))}`,
          ),
        ),
      timeoutMs,
    );
    /** The answer, once complete (`ended`: the connection has ended). */
    const tryParse = (ended: boolean): RawAnswer | undefined => {
      let start = 0;
      for (;;) {
        const end = buf.indexOf(HEAD_END, start);
        if (end < 0) return undefined;
        const head = buf.subarray(start, end).toString('latin1');
        const [statusLine, ...lines] = head.split('\r\n');
        const m = /^HTTP\/\d\.\d (\d{3}) ?(.*)$/.exec(statusLine ?? '');
        if (!m) throw new Error(`malformed status line ${JSON.stringify(statusLine)}`);
        const status = Number(m[1]);
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const c = l.indexOf(':');
          if (c <= 0) continue;
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
        }
        const rest = buf.subarray(end + 4);
        if (status === 100) {
          start = end + 4; // an interim answer: the real one follows
          continue;
        }
        const answer = (body: Buffer): RawAnswer => ({
          kind: 'answer',
          status,
          reason: m[2] ?? '',
          headers,
          body,
          head,
        });
        if (opts.head || status === 101 || status === 204 || status === 304)
          return answer(Buffer.alloc(0));
        if (headers['content-length'] !== undefined) {
          const n = Number(headers['content-length']);
          return rest.length >= n ? answer(rest.subarray(0, n)) : undefined;
        }
        if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
          const body = dechunk(rest);
          return body ? answer(body) : ended ? answer(rest) : undefined;
        }
        return ended ? answer(rest) : undefined;
      }
    };
    const check = (ended: boolean, error?: string): void => {
      let a: RawAnswer | undefined;
      try {
        a = tryParse(ended);
      } catch (e) {
        finish(e as Error);
        return;
      }
      if (a) finish(a);
      else if (ended)
        finish({
          kind: 'no-answer',
          partial: buf.subarray(0, 300).toString('latin1'),
          ...(error ? { error } : {}),
        });
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check(false);
    });
    sock.on('end', () => check(true));
    sock.on('close', () => check(true));
    sock.on('error', (e: NodeJS.ErrnoException) => check(true, e.code ?? e.message));
    sock.on('connect', () => {
      sock.write(request);
      if (opts.abortAfterMs !== undefined) {
        setTimeout(
          () =>
            finish({
              kind: 'no-answer',
              partial: buf.subarray(0, 300).toString('latin1'),
              error: 'aborted by the client',
            }),
          opts.abortAfterMs,
        );
      }
    });
  });
}

/** Short printable form of a string or bytes for failure messages. */
export function preview(x: string | Buffer | undefined, max = 200): string {
  if (x === undefined) return '(none)';
  const s = typeof x === 'string' ? x : x.toString('latin1');
  return s.length > max
    ? `${JSON.stringify(s.slice(0, max))}…(${s.length} chars)`
    : JSON.stringify(s);
}

/** The type and (truncated) content of some keys, for failure messages. */
export async function describeKeys(redis: RawRedis, keys: string[], max = 5): Promise<string> {
  const out: string[] = [];
  for (const k of keys.slice(0, max)) {
    const type = await redis.type(k);
    let content: unknown;
    if (type === 'hash') content = await redis.hgetall(k);
    else if (type === 'list') content = await redis.lrange(k, 0, 20);
    else if (type === 'set') content = await redis.smembers(k);
    else if (type === 'zset') content = await redis.zrange(k, 0, 20, 'WITHSCORES');
    else if (type === 'string') content = await redis.get(k);
    else content = `(${type})`;
    out.push(`${k} (${type}, now): ${preview(JSON.stringify(content), 600)}`);
  }
  return out.join('\n  ');
}
