import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { durationMs } from '../define/duration.js';
import type { HandlerSpec } from '../define/definitions.js';
import { SerdeValidationError } from '../define/serde.js';
import type { Registry } from '../runtime/registry.js';
import { parseAwakeableId } from '../context/context.js';
import type { Completion } from '../journal/entry.js';
import type { InvocationRequest, Outcome, Store } from '../store.js';
import { Stopper, type StopSignal } from '../runtime/stop-signal.js';

/** Options of the HTTP ingress. */
export interface IngressOptions {
  /** Largest accepted request body (bytes); default 10 MiB. */
  maxBodyBytes?: number;
  logger?: Pick<Console, 'warn' | 'error'>;
}

const DAY = 86_400_000;
const MAX_KEY_LENGTH = 1024;

/** An error answered to an HTTP client: status, machine-readable code, message. */
export class IngressError extends Error {
  readonly status: number;
  readonly errorCode: string;
  readonly extra: Record<string, unknown>;
  constructor(status: number, errorCode: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.extra = extra;
  }
}

function send(res: ServerResponse, status: number, body: string | undefined, id?: string): void {
  if (res.headersSent) return;
  // With its length known up front, Node sends the head and the body in one write (no chunked framing).
  const length = body === undefined ? 0 : Buffer.byteLength(body);
  res.writeHead(
    status,
    id === undefined
      ? { 'content-type': 'application/json', 'content-length': length }
      : { 'content-type': 'application/json', 'content-length': length, 'x-restate-id': id },
  );
  res.end(body);
}

function sendError(res: ServerResponse, e: IngressError): void {
  send(res, e.status, JSON.stringify({ code: e.status, errorCode: e.errorCode, message: e.message, ...e.extra }));
}

/** Parses `?delay=`: milliseconds, `10s`/`5m`/`250ms`-style, or ISO 8601 `PT10S`. */
export function parseDelay(raw: string): number {
  const s = raw.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const simple = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (simple) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY }[simple[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return Math.round(Number(simple[1]) * unit);
  }
  const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s);
  if (iso && s !== 'P' && s !== 'PT') {
    return durationMs({
      days: Number(iso[1] ?? 0),
      hours: Number(iso[2] ?? 0),
      minutes: Number(iso[3] ?? 0),
      seconds: Number(iso[4] ?? 0),
    });
  }
  throw new IngressError(400, 'INVALID_DELAY', `invalid delay ${JSON.stringify(raw)}: use milliseconds, 10s-style or ISO 8601 (PT10S)`);
}

/** Checks an object/workflow key: non-empty, bounded, no control characters. */
export function checkKey(key: string): void {
  if (key.length === 0) throw new IngressError(400, 'INVALID_KEY', 'the key must not be empty');
  if (key.length > MAX_KEY_LENGTH) throw new IngressError(400, 'INVALID_KEY', `the key is longer than ${MAX_KEY_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new IngressError(400, 'INVALID_KEY', 'the key contains control characters');
}

/**
 * Reads a request body as UTF-8, refusing one larger than `max` bytes: at once when its
 * Content-Length says so, else as soon as the bytes read pass the limit (the caller answers 413
 * and discards the rest, see `discardRest`).
 */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    return Promise.reject(new IngressError(413, 'BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${max}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        reject(new IngressError(413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      req.off('error', reject);
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

/** A path the WHATWG URL parser would change: dot segments (also percent-encoded), backslashes. */
const NEEDS_URL_PARSER = /\/\.|%2e|\\/i;

/**
 * Splits a request target into its path segments and its query. Plain paths (the hot path) are
 * split as they are; one with dot segments or backslashes goes through the WHATWG URL parser,
 * which resolves them as it always did here.
 */
function parseTarget(raw: string): { pathname: string; segs: string[]; query: URLSearchParams | undefined } {
  const h = raw.indexOf('#');
  const target = h >= 0 ? raw.slice(0, h) : raw;
  const q = target.indexOf('?');
  let pathname = q >= 0 ? target.slice(0, q) : target;
  let search = q >= 0 ? target.slice(q + 1) : '';
  if (!pathname.startsWith('/') || NEEDS_URL_PARSER.test(pathname)) {
    const url = new URL(raw, 'http://ingress');
    pathname = url.pathname;
    search = url.search.slice(1);
  }
  const segs = pathname.split('/').filter((s) => s.length > 0);
  return { pathname, segs, query: search === '' ? undefined : new URLSearchParams(search) };
}

/**
 * Parses request JSON. `JSON.parse` creates a `__proto__` key as an own data
 * property (it never calls the prototype setter), so such payloads arrive intact
 * as plain data and reach no prototype.
 */
function safeParse(text: string): unknown {
  return JSON.parse(text) as unknown;
}

interface Route {
  spec: HandlerSpec;
  key: string | undefined;
  send: boolean;
}

function decode(seg: string): string {
  if (!seg.includes('%')) return seg;
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new IngressError(400, 'INVALID_PATH', `malformed percent-encoding in ${JSON.stringify(seg)}`);
  }
}

function resolveRoute(registry: Registry, segs: string[], forceSend: boolean | undefined): Route {
  const svcName = decode(segs[0] ?? '');
  const def = registry.service(svcName);
  if (!def) throw new IngressError(404, 'NOT_FOUND', `service '${svcName}' not found`);
  // After the service: [key,] handler [, 'send'].
  let rest = segs.length - 1;
  let send = forceSend ?? false;
  const keyed = def.kind !== 'service';
  if (forceSend === undefined && rest === (keyed ? 3 : 2) && segs[segs.length - 1] === 'send') {
    send = true;
    rest--;
  }
  if (rest !== (keyed ? 2 : 1)) {
    throw new IngressError(404, 'NOT_FOUND', keyed ? `use /${svcName}/{key}/{handler}` : `use /${svcName}/{handler}`);
  }
  const found = findHandler(registry, svcName, decode(segs[rest]!), keyed ? decode(segs[1]!) : undefined);
  return { spec: found.spec, key: found.key, send };
}

/**
 * Recognizes the attach/output forms of Restate's ingress and resolves the
 * invocation they name (`id` undefined when nothing matches the reference):
 * `GET /restate/invocation/{id}/attach|output`,
 * `GET /restate/invocation/{service}[/{key}]/{handler}/{idempotencyKey}/attach|output`,
 * `GET /restate/workflow/{name}/{key}/attach|output`, `GET /restate/attach|output/{id}`, and
 * `POST /restate/attach|output` with `{invocationId}`, `{service, key?, handler, idempotencyKey}`
 * or `{workflow, key}`.
 */
async function attachTarget(
  registry: Registry,
  store: Store,
  segs: string[],
  req: IncomingMessage,
  max: number,
): Promise<{ op: 'attach' | 'output'; id: string | undefined } | undefined> {
  if (segs[0] !== 'restate') return undefined;
  const last = segs[segs.length - 1];
  const method = req.method;
  if (method === 'GET' && segs[1] === 'invocation' && (last === 'attach' || last === 'output')) {
    const mid = segs.slice(2, -1).map(decode);
    if (mid.length === 1) return { op: last, id: mid[0] };
    const def = registry.service(mid[0]!);
    const keyed = def ? def.kind !== 'service' : mid.length === 4;
    if ((keyed && mid.length === 4) || (!keyed && mid.length === 3)) {
      const [service, a, b, c] = mid as [string, string, string, string?];
      const ref = keyed ? { service, key: a, handler: b, idempotencyKey: c! } : { service, handler: a, idempotencyKey: b };
      return { op: last, id: await store.lookup(ref) };
    }
    throw new IngressError(404, 'NOT_FOUND', `unknown path /${segs.join('/')}`);
  }
  if (method === 'GET' && segs[1] === 'workflow' && segs.length === 5 && (last === 'attach' || last === 'output')) {
    return { op: last, id: await store.lookup({ workflow: decode(segs[2]!), key: decode(segs[3]!) }) };
  }
  if ((segs[1] === 'attach' || segs[1] === 'output') && method === 'GET' && segs.length === 3) {
    return { op: segs[1], id: decode(segs[2]!) };
  }
  if ((segs[1] === 'attach' || segs[1] === 'output') && method === 'POST' && segs.length === 2) {
    const text = await readBody(req, max);
    let body: Record<string, unknown>;
    try {
      body = safeParse(text) as Record<string, unknown>;
    } catch (e) {
      throw new IngressError(400, 'INVALID_JSON', `invalid JSON: ${(e as Error).message}`);
    }
    if (typeof body !== 'object' || body === null) throw new IngressError(400, 'INVALID_REFERENCE', 'the body must be a JSON object');
    const str = (k: string): string | undefined => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    if (str('invocationId')) return { op: segs[1], id: str('invocationId') };
    if (str('workflow') && str('key')) return { op: segs[1], id: await store.lookup({ workflow: str('workflow')!, key: str('key')! }) };
    if (str('service') && str('handler') && str('idempotencyKey')) {
      const key = str('key');
      return {
        op: segs[1],
        id: await store.lookup({ service: str('service')!, handler: str('handler')!, idempotencyKey: str('idempotencyKey')!, ...(key !== undefined ? { key } : {}) }),
      };
    }
    throw new IngressError(400, 'INVALID_REFERENCE', 'give invocationId, {workflow, key} or {service, key?, handler, idempotencyKey}');
  }
  return undefined;
}

/**
 * Validates a request for a handler (input schema, delay, idempotency key) and
 * builds the store's {@link InvocationRequest}. Throws {@link IngressError}s;
 * shared by the HTTP and WebSocket ingresses.
 */
export function buildRequest(
  spec: HandlerSpec,
  key: string | undefined,
  rawInput: unknown,
  opts: { send: boolean; delay?: string | number; idempotencyKey?: string; headers?: Record<string, string> },
): InvocationRequest {
  let input = rawInput;
  if (spec.input) {
    try {
      input = spec.input.parse(input);
    } catch (e) {
      if (e instanceof SerdeValidationError) {
        throw new IngressError(400, 'INVALID_INPUT', e.message, { issues: e.issues.map((i) => ({ ...i, path: i.path.map(String) })) });
      }
      throw new IngressError(400, 'INVALID_INPUT', (e as Error).message);
    }
  }
  const delayMs = opts.delay === undefined ? 0 : typeof opts.delay === 'number' ? Math.max(0, Math.round(opts.delay)) : parseDelay(opts.delay);
  if (!Number.isFinite(delayMs)) throw new IngressError(400, 'INVALID_DELAY', 'invalid delay');
  if (delayMs > 0 && !opts.send) throw new IngressError(400, 'INVALID_DELAY', 'delay is only allowed on sends');
  const idempotencyKey = opts.idempotencyKey;
  if (idempotencyKey !== undefined) {
    if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > MAX_KEY_LENGTH) {
      throw new IngressError(400, 'INVALID_IDEMPOTENCY_KEY', `the idempotency key must be 1 to ${MAX_KEY_LENGTH} characters`);
    }
  }
  const o = spec.options;
  return {
    target: { service: spec.service, handler: spec.name, ...(key !== undefined ? { key } : {}) },
    mode: spec.mode,
    input: input === undefined ? '' : JSON.stringify(input),
    headers: opts.headers ?? {},
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    delayMs,
    journalRetentionMs: o.journalRetention !== undefined ? durationMs(o.journalRetention) : DAY,
    idempotencyRetentionMs: o.idempotencyRetention !== undefined ? durationMs(o.idempotencyRetention) : DAY,
    workflowRetentionMs: o.workflowRetention !== undefined ? durationMs(o.workflowRetention) : DAY,
  };
}

/** Finds a handler for the WebSocket ingress (same rules as the HTTP paths). */
export function findHandler(registry: Registry, service: unknown, handler: unknown, key: unknown): { spec: HandlerSpec; key: string | undefined } {
  if (typeof service !== 'string' || typeof handler !== 'string') {
    throw new IngressError(400, 'INVALID_FRAME', 'service and handler must be strings');
  }
  const def = registry.service(service);
  if (!def) throw new IngressError(404, 'NOT_FOUND', `service '${service}' not found`);
  const spec = registry.handler(service, handler);
  if (!spec || spec.options.ingressPrivate) throw new IngressError(404, 'NOT_FOUND', `handler '${service}/${handler}' not found`);
  if (def.kind === 'service') {
    if (key !== undefined) throw new IngressError(400, 'INVALID_KEY', `service '${service}' takes no key`);
    return { spec, key: undefined };
  }
  if (typeof key !== 'string') throw new IngressError(400, 'INVALID_KEY', `'${service}' needs a string key`);
  checkKey(key);
  return { spec, key };
}

/** Parses JSON without letting `__proto__` reach any prototype (exported for the WebSocket ingress). */
export { safeParse };

/** Writes an outcome as Restate's ingress does: 200 with the JSON value, or the error status. */
export function writeOutcome(res: ServerResponse, id: string, o: Outcome): void {
  if (o.ok) {
    send(res, 200, o.value ?? 'null', id);
  } else {
    const status = o.error.status ?? 500;
    send(res, status, JSON.stringify({ code: status, errorCode: o.error.code, message: o.error.message }), id);
  }
}

/**
 * The HTTP ingress: `POST /{service}/{key?}/{handler}` returns the result,
 * `.../send` returns the invocation id (Restate's paths and status codes).
 */
export function createIngress(registry: Registry, store: Store, options: IngressOptions = {}): Server {
  const max = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = parseTarget(req.url ?? '/');
    const segs = url.segs;
    if (req.method === 'GET' && url.pathname === '/health') {
      send(res, 200, '{"status":"ok"}');
      return;
    }
    const ref = segs[0] === 'restate' ? await attachTarget(registry, store, segs, req, max) : undefined;
    if (ref) {
      const id = ref.id;
      if (id === undefined) throw new IngressError(404, 'NOT_FOUND', `no invocation found for ${url.pathname}`);
      const info = await store.describe(id);
      if (!info) throw new IngressError(404, 'NOT_FOUND', `invocation ${id} not found`);
      if (ref.op === 'output') {
        if (!info.outcome) {
          throw new IngressError(470, 'NOT_READY', 'the invocation exists but has not completed yet', { source: 'ingress' });
        }
        writeOutcome(res, id, info.outcome);
        return;
      }
      writeOutcome(res, id, info.outcome ?? (await awaitWhileConnected(store, id, req)));
      return;
    }
    if (req.method !== 'POST') throw new IngressError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
    if (segs[0] === 'restate' && (segs[1] === 'awakeables' || segs[1] === 'a') && segs.length === 4) {
      const id = decode(segs[2]!);
      const op = segs[3];
      if (op !== 'resolve' && op !== 'reject') throw new IngressError(404, 'NOT_FOUND', `unknown path ${url.pathname}`);
      const text = await readBody(req, max);
      let completion: Completion;
      if (op === 'resolve') {
        if (text !== '') {
          try {
            safeParse(text);
          } catch (e) {
            throw new IngressError(400, 'INVALID_JSON', `Failed to deserialize input: ${(e as Error).message}`);
          }
        }
        completion = text === '' ? { ok: true } : { ok: true, v: text };
      } else {
        completion = { ok: false, e: { name: 'TerminalError', code: 'TERMINAL', message: text, status: 500 } };
      }
      if (!parseAwakeableId(id)) throw new IngressError(400, 'INVALID_AWAKEABLE_ID', `malformed awakeable id ${JSON.stringify(id)}`);
      const ok = await store.resolveAwakeable(id, completion);
      if (!ok) throw new IngressError(404, 'NOT_FOUND', `awakeable ${id} not found or already completed`);
      send(res, 202, undefined);
      return;
    }
    let forceSend: boolean | undefined;
    let path = segs;
    if (segs[0] === 'restate' && (segs[1] === 'call' || segs[1] === 'send')) {
      forceSend = segs[1] === 'send';
      path = segs.slice(2);
    }
    const route = resolveRoute(registry, path, forceSend);
    const ctype = String(req.headers['content-type'] ?? '');
    const text = await readBody(req, max);
    let input: unknown;
    if (text.length > 0) {
      if (ctype !== '' && !/^application\/(.+\+)?json\b/i.test(ctype)) {
        throw new IngressError(415, 'UNSUPPORTED_CONTENT_TYPE', `content-type ${ctype} is not supported; send application/json`);
      }
      try {
        input = safeParse(text);
      } catch (e) {
        throw new IngressError(400, 'INVALID_JSON', `Failed to deserialize input: ${(e as Error).message}`, { source: 'invocation' });
      }
    }
    const delayRaw = url.query?.get('delay') ?? null;
    const idemHeader = req.headers['idempotency-key'];
    const headers: Record<string, string> = {};
    const all = req.headers;
    for (const k in all) {
      const v = all[k];
      if (typeof v === 'string' && !k.startsWith('content-')) headers[k] = v;
    }
    const request = buildRequest(route.spec, route.key, input, {
      send: route.send,
      ...(delayRaw !== null ? { delay: delayRaw } : {}),
      ...(typeof idemHeader === 'string' && idemHeader.length > 0 ? { idempotencyKey: idemHeader } : {}),
      headers,
    });
    const idempotencyKey = request.idempotencyKey;
    if (route.send) {
      const accepted = await store.accept(request);
      const id = accepted.invocationId;
      send(res, 202, `{"invocationId":${JSON.stringify(id)},"status":"${accepted.status}"}`, id);
      return;
    }
    const gone = whileConnected(req);
    try {
      const accepted = await store.accept(request, { awaitOutcome: gone.signal });
      if (accepted.status === 'PreviouslyAccepted' && accepted.reason === 'workflow' && idempotencyKey === undefined) {
        throw new IngressError(409, 'WORKFLOW_ALREADY_INVOKED', 'the workflow method was already invoked', { source: 'invocation' });
      }
      writeOutcome(res, accepted.invocationId, await accepted.outcome!);
    } finally {
      gone.done();
    }
  };

  return createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof IngressError) {
        sendError(res, e);
        if (e.status === 413) discardRest(req);
        return;
      }
      if ((e as { name?: string }).name === 'AbortError') return;
      if ((e as { code?: string }).code === 'REDIS_WIPED') {
        sendError(res, new IngressError(503, 'REDIS_WIPED', (e as Error).message));
        return;
      }
      options.logger?.error(`[latchkey] ingress error: ${(e as Error).message}`);
      sendError(res, new IngressError(500, 'INTERNAL', (e as Error).message ?? 'internal error'));
    });
  });
}

/** How long the rest of a refused request body is read and discarded before its connection is dropped (ms). */
const LINGER_MS = 2000;

/**
 * Reads and discards the rest of a refused request body (as Node does for any body left unread
 * once the answer is sent), and drops the connection when the client is still sending after
 * {@link LINGER_MS}. Closing at once would make the kernel reset a connection with unread bytes,
 * and the client would lose the answer it was just sent.
 */
function discardRest(req: IncomingMessage): void {
  const timer = setTimeout(() => req.destroy(), LINGER_MS);
  timer.unref();
  const stop = (): void => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}

/** The stop reason once a request is answered. */
const REQUEST_DONE = Object.assign(new Error('request finished'), { name: 'AbortError' });

/** A stop signal that fires when the client's connection closes; `done()` stops watching (and stops). */
function whileConnected(req: IncomingMessage): { signal: StopSignal; done(): void } {
  const ac = new Stopper();
  const onClose = (): void => {
    const e = new Error('client went away');
    e.name = 'AbortError';
    ac.abort(e);
  };
  req.socket.once('close', onClose);
  return {
    signal: ac.signal,
    done: () => {
      req.socket.off('close', onClose);
      ac.abort(REQUEST_DONE);
    },
  };
}

function awaitWhileConnected(store: Store, id: string, req: IncomingMessage): Promise<Outcome> {
  const gone = whileConnected(req);
  return store.awaitOutcome(id, gone.signal).finally(() => gone.done());
}
