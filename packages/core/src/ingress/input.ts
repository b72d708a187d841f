/**
 * The shape of what a client sends, checked before anything reaches the store: JSON bounded in
 * depth, keys and idempotency keys, delays and headers, and the rules (limits) of both public
 * ingresses. A request that fails a check changes nothing. docs/SECURITY.md says why each rule
 * exists.
 */
import { durationMs, MAX_TIMER_MS, type Duration } from '../define/duration.js';
import { IngressError } from '../errors.js';

/** A day in ms (the default retentions). */
export const DAY = 86_400_000;
/** The longest key or idempotency key, in characters. */
export const MAX_KEY_LENGTH = 1024;

/** The credentials a request may carry that are never stored with an invocation. */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization',
  'cookie',
  'proxy-authorization',
];

/** Options of the rules both public ingresses apply (part of `serve()`'s options). */
export interface IngressRules {
  /** Longest `delay` a client may give a send (Restate's users schedule up to months); default 365 days. */
  maxDelay?: Duration;
  /** Deepest nesting of arrays and objects in a request's JSON; default 64. */
  maxJsonDepth?: number;
  /**
   * Request headers never stored with an invocation (nor shown to its handler), besides
   * `authorization`, `cookie` and `proxy-authorization`, which never are. Case-insensitive.
   */
  redactHeaders?: string[];
}

/** {@link IngressRules} with the defaults filled in. */
export interface Rules {
  maxDelayMs: number;
  maxJsonDepth: number;
  redact: ReadonlySet<string>;
}

/** Fills in the defaults of {@link IngressRules}. */
export function ingressRules(o: IngressRules = {}): Rules {
  const maxDelayMs = o.maxDelay !== undefined ? durationMs(o.maxDelay) : 365 * DAY;
  if (maxDelayMs > MAX_TIMER_MS)
    throw new TypeError(`maxDelay may not exceed ${MAX_TIMER_MS} ms (100 years)`);
  const maxJsonDepth = o.maxJsonDepth ?? 64;
  if (!Number.isInteger(maxJsonDepth) || maxJsonDepth < 1)
    throw new TypeError('maxJsonDepth must be a positive integer');
  return {
    maxDelayMs,
    maxJsonDepth,
    redact: new Set([
      ...CREDENTIAL_HEADERS,
      ...(o.redactHeaders ?? []).map((h) => h.toLowerCase()),
    ]),
  };
}

/**
 * True when `text` nests arrays and objects deeper than `max` (brackets inside strings do not
 * count). Checked before `JSON.parse`, so no deep document is ever built, walked or re-serialized.
 */
export function jsonTooDeep(text: string, max: number): boolean {
  if (text.length <= max) return false; // fewer characters than the limit: cannot be deeper
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/**
 * Parses a client's JSON: 400 `JSON_TOO_DEEP` beyond `maxDepth`, 400 `INVALID_JSON` when malformed
 * (`prefix` starts the message, as Restate's "Failed to deserialize input: "). `JSON.parse` makes a
 * `__proto__` key an own data property (it never calls the prototype setter), so such payloads
 * arrive as plain data and reach no prototype.
 */
export function parseJson(
  text: string,
  maxDepth: number,
  prefix = 'invalid JSON: ',
  extra: Record<string, unknown> = {},
): unknown {
  if (jsonTooDeep(text, maxDepth)) {
    throw new IngressError(
      400,
      'JSON_TOO_DEEP',
      `the JSON nests deeper than ${maxDepth} levels`,
      extra,
    );
  }
  return parseChecked(text, prefix, extra);
}

/**
 * Parses a WebSocket frame: the frame's own object is one level more than the values it carries,
 * so an `input` nested as deep as an HTTP body may be is accepted here too.
 */
export function parseFrame(text: string, maxDepth: number): unknown {
  if (jsonTooDeep(text, maxDepth + 1)) {
    throw new IngressError(
      400,
      'JSON_TOO_DEEP',
      `the values in the frame nest deeper than ${maxDepth} levels`,
    );
  }
  return parseChecked(text, 'invalid JSON: ', {});
}

function parseChecked(text: string, prefix: string, extra: Record<string, unknown>): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new IngressError(400, 'INVALID_JSON', `${prefix}${(e as Error).message}`, extra);
  }
}

/** A lone surrogate: a string no UTF-8 encoding (and so no key) can hold. */
export const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Checks an object/workflow key: non-empty, at most 1024 characters, well-formed Unicode, no control characters. */
export function checkKey(key: string): void {
  if (key.length === 0) throw new IngressError(400, 'INVALID_KEY', 'the key must not be empty');
  if (key.length > MAX_KEY_LENGTH)
    throw new IngressError(
      400,
      'INVALID_KEY',
      `the key is longer than ${MAX_KEY_LENGTH} characters`,
    );
  if (CONTROL.test(key))
    throw new IngressError(400, 'INVALID_KEY', 'the key contains control characters');
  if (LONE_SURROGATE.test(key))
    throw new IngressError(
      400,
      'INVALID_KEY',
      'the key is not well-formed Unicode (a lone surrogate)',
    );
}

/** Checks an idempotency key: a string of 1 to 1024 characters, well-formed Unicode. */
export function checkIdempotencyKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new IngressError(
      400,
      'INVALID_IDEMPOTENCY_KEY',
      `the idempotency key must be 1 to ${MAX_KEY_LENGTH} characters`,
    );
  }
  if (LONE_SURROGATE.test(key))
    throw new IngressError(
      400,
      'INVALID_IDEMPOTENCY_KEY',
      'the idempotency key is not well-formed Unicode (a lone surrogate)',
    );
}

/**
 * Parses a client's delay: milliseconds (a number, or digits), `10s`/`5m`/`250ms`-style, or ISO 8601
 * `PT10S`. 400 `INVALID_DELAY` when malformed, negative or above `maxMs`.
 */
export function parseDelay(raw: string | number, maxMs: number): number {
  let ms: number | undefined;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw < 0)
      throw new IngressError(
        400,
        'INVALID_DELAY',
        `invalid delay ${raw}: a number of milliseconds, 0 or more`,
      );
    ms = Math.ceil(raw);
  } else {
    const s = raw.trim();
    if (s.length <= 64) {
      const simple = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s);
      const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s);
      if (simple) {
        const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY }[
          (simple[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'
        ];
        ms = Math.ceil(Number(simple[1]) * unit);
      } else if (iso && s !== 'P' && !s.endsWith('T')) {
        ms = Math.ceil(
          Number(iso[1] ?? 0) * DAY +
            Number(iso[2] ?? 0) * 3_600_000 +
            Number(iso[3] ?? 0) * 60_000 +
            Number(iso[4] ?? 0) * 1000,
        );
      }
    }
    if (ms === undefined) {
      throw new IngressError(
        400,
        'INVALID_DELAY',
        `invalid delay ${JSON.stringify(raw.slice(0, 64))}: use milliseconds, 10s-style or ISO 8601 (PT10S)`,
      );
    }
  }
  if (!(ms <= maxMs))
    throw new IngressError(400, 'INVALID_DELAY', `the delay exceeds the maximum of ${maxMs} ms`);
  return ms;
}

/** Header names: an HTTP token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
const MAX_HEADERS = 64;
const MAX_HEADER_VALUE = 8192;

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection to the ingress, not the
 * invocation, and are not stored with it.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The headers stored with an invocation (and shown to its handler as `ctx.request().headers`):
 * from an HTTP request, every string header but `content-*`, the hop-by-hop ones (`connection`,
 * `keep-alive`, `upgrade`, ...) and the redacted ones (credentials).
 */
export function httpHeaders(
  all: Record<string, string | string[] | undefined>,
  rules: Rules,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const k in all) {
    const v = all[k];
    if (
      typeof v === 'string' &&
      !k.startsWith('content-') &&
      !HOP_BY_HOP.has(k) &&
      !rules.redact.has(k)
    )
      headers[k] = v;
  }
  return headers;
}

/**
 * The `headers` of a WebSocket frame: a JSON object (not an array) of at most 64 string values of
 * at most 8 KiB, named as HTTP headers (stored lower-case); the redacted ones are dropped.
 */
export function frameHeaders(raw: unknown, rules: Rules): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new IngressError(400, 'INVALID_HEADERS', 'headers must be a JSON object of strings');
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > MAX_HEADERS)
    throw new IngressError(400, 'INVALID_HEADERS', `at most ${MAX_HEADERS} headers`);
  const headers: Record<string, string> = {};
  for (const [name, v] of entries) {
    if (!HEADER_NAME.test(name))
      throw new IngressError(
        400,
        'INVALID_HEADERS',
        'a header name must be an HTTP token of 1 to 256 characters',
      );
    if (
      typeof v !== 'string' ||
      v.length > MAX_HEADER_VALUE ||
      CONTROL.test(v.replace(/\t/g, ' '))
    ) {
      throw new IngressError(
        400,
        'INVALID_HEADERS',
        `header '${name}' must be a string of at most ${MAX_HEADER_VALUE} characters without control characters`,
      );
    }
    const lower = name.toLowerCase();
    if (!rules.redact.has(lower)) headers[lower] = v;
  }
  return headers;
}
