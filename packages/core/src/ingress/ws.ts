import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Registry } from '../runtime/registry.js';
import type { Outcome, Store } from '../store.js';
import { ProgressWatchers } from './progress.js';
import { isJson, type Serde } from '../define/serde.js';
import {
  IngressError,
  buildRequest,
  checkReference,
  clientError,
  errorBody,
  findHandler,
  frameHeaders,
  outputOf,
  ingressRules,
  parseFrame,
  publicTarget,
  resolveAwakeable,
  type Rules,
} from './common.js';
import { Stopper } from '../runtime/stop-signal.js';

/** Options of the WebSocket ingress (see docs/PROTOCOL.md). */
export interface WebSocketOptions {
  /** Largest accepted frame (bytes); larger ones close the socket with 1009. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Largest send buffer of a socket (bytes) before it is closed with 1013. Default 8 MiB. */
  maxBufferedBytes?: number;
  /** Where unexpected failures are logged. */
  logger?: Pick<Console, 'error'>;
  /** Ping period (ms); a socket that missed the previous ping is closed. Default 15 s. */
  heartbeatMs?: number;
  /** How often a subscribed invocation's progress is polled (ms). Default 200. */
  pollMs?: number;
  /** The path upgrades are served on; others are answered 404. Default `/ws`. */
  path?: string;
  /**
   * Origins (`scheme://host[:port]`) whose pages may open a socket, or `'*'` for any. Clients that
   * send no `Origin` (non-browser clients) are always served, and so are pages of the ingress's
   * own origin; any other origin is refused with 403 `ORIGIN_NOT_ALLOWED`. Default: none besides those.
   */
  allowedOrigins?: string[] | '*';
  /** Requests one socket may have open at once (calls and attaches waiting for results, and requests being handled); default 1000. */
  maxOpenRequests?: number;
  /** Live subscriptions one socket may hold; default 100. */
  maxSubscriptions?: number;
}

type Frame = Record<string, unknown>;

const MAX_ID = 128;

/**
 * A `result` frame. The value of a handler whose output serde is not JSON is its bytes in base64,
 * marked `encoding: 'base64'`.
 */
function outcomeFrame(id: string, invocationId: string, o: Outcome, output?: Serde<unknown>): Frame {
  if (o.ok && !isJson(output)) return { id, type: 'result', invocationId, ok: true, value: o.value ?? '', encoding: 'base64' };
  if (o.ok) return { id, type: 'result', invocationId, ok: true, ...(o.value === undefined ? {} : { value: JSON.parse(o.value) as unknown }) };
  return { id, type: 'result', invocationId, ok: false, error: errorBody(o.error) };
}

/**
 * Refuses an upgrade with a JSON answer and closes the socket once it is written: an upgrade socket
 * is paused and outside the HTTP server's timeouts, so one left half-open (its unread body filling
 * the buffer) would never see its client leave.
 */
function refuseUpgrade(socket: Duplex, status: number, errorCode: string, message: string): void {
  const body = JSON.stringify({ code: status, errorCode, message });
  const reason = status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Bad Request';
  socket.once('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Whether a socket's `Origin` may open it (see {@link WebSocketOptions.allowedOrigins}). */
function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string> | '*'): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || allowed === '*') return true;
  const o = origin.toLowerCase();
  if (allowed.has(o)) return true;
  try {
    // The ingress's own pages: same host and port as the request was sent to.
    return new URL(o).host === String(req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Serves the WebSocket protocol on an HTTP server's upgrades: calls, sends,
 * workflow submission, attach/output, live subscriptions, awakeables, cancel.
 */
export function attachWebSocket(
  server: Server,
  registry: Registry,
  store: Store,
  options: WebSocketOptions = {},
  rules: Rules = ingressRules(),
): { close(): Promise<void> } {
  const maxFrame = options.maxFrameBytes ?? 1024 * 1024;
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const pollMs = options.pollMs ?? 200;
  const path = options.path ?? '/ws';
  const maxOpen = options.maxOpenRequests ?? 1000;
  const maxSubs = options.maxSubscriptions ?? 100;
  const allowed = options.allowedOrigins === '*' ? '*' : new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase()));
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrame, perMessageDeflate: false });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q >= 0 ? url.slice(0, q) : url) !== path) {
      refuseUpgrade(socket, 404, 'NOT_FOUND', `WebSocket upgrades are served on ${path} only`);
      return;
    }
    if (!originAllowed(req, allowed)) {
      refuseUpgrade(socket, 403, 'ORIGIN_NOT_ALLOWED', 'this origin may not open a WebSocket here (see the allowedOrigins option)');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const alive = new WeakMap<WebSocket, boolean>();
  const progress = new ProgressWatchers(store, pollMs);

  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));
    /** Requests waiting for a result or holding a subscription, by request id. */
    const open = new Map<string, () => void>();
    /** The ids among `open` that are subscriptions. */
    const subscriptions = new Set<string>();
    /** Requests being handled (not answered yet). */
    let handling = 0;
    const closeAll = (): void => {
      for (const stop of open.values()) stop();
      open.clear();
      subscriptions.clear();
    };
    ws.on('close', closeAll);
    ws.on('error', () => undefined);

    const send = (f: Frame): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > maxBuffered) {
        ws.close(1013, 'consumer too slow: send buffer full');
        closeAll();
        return;
      }
      ws.send(JSON.stringify(f));
    };
    const fail = (id: string | undefined, e: unknown): void => {
      let err = clientError(e);
      if (!err) {
        // An unexpected failure names no internals to the client (the details go to the log).
        options.logger?.error(`[latchkey] WebSocket ingress error: ${(e as Error).stack ?? String(e)}`);
        err = new IngressError(500, 'INTERNAL', 'internal error');
      }
      send({ ...(id !== undefined ? { id } : {}), type: 'error', code: err.status, errorCode: err.errorCode, message: err.message, ...err.extra });
    };

    /** Resolves the invocation an attach/output/subscribe frame names, and its handler's output serde. */
    const target = async (f: Frame): Promise<{ inv: string; output: Serde<unknown> | undefined }> => {
      const str = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
      let id: string | undefined;
      if (str('invocationId')) id = str('invocationId');
      else if (str('workflow') && str('key') !== undefined) {
        const ref = { workflow: str('workflow')!, key: str('key')! };
        checkReference(ref);
        id = await store.lookup(ref);
      } else if (str('service') && str('handler') && str('idempotencyKey')) {
        const key = str('key');
        const ref = { service: str('service')!, handler: str('handler')!, idempotencyKey: str('idempotencyKey')!, ...(key !== undefined ? { key } : {}) };
        checkReference(ref);
        id = await store.lookup(ref);
      } else throw new IngressError(400, 'INVALID_FRAME', 'name the invocation: invocationId, workflow + key, or service + handler + idempotencyKey');
      const info = id === undefined ? undefined : await store.describe(id);
      // An ingressPrivate handler's invocation is not there for a public client.
      if (!info || !publicTarget(registry, info.target)) throw new IngressError(404, 'NOT_FOUND', 'no such invocation');
      return { inv: info.id, output: outputOf(registry, info.target) };
    };

    /** Sends the result of `invocationId` when `outcome` (default: a fresh wait) settles. */
    const awaitResult = (reqId: string, invocationId: string, output: Serde<unknown> | undefined, ac = new Stopper(), outcome?: Promise<Outcome>): void => {
      open.set(reqId, () => ac.abort());
      (outcome ?? store.awaitOutcome(invocationId, ac.signal)).then(
        (o) => {
          open.delete(reqId);
          send(outcomeFrame(reqId, invocationId, o, output));
        },
        () => open.delete(reqId),
      );
    };

    const handle = async (f: Frame, id: string): Promise<void> => {
      switch (f['type']) {
        case 'ping':
          send({ id, type: 'pong' });
          return;
        case 'call':
        case 'send':
        case 'submit': {
          const isSubmit = f['type'] === 'submit';
          const { spec, key } = findHandler(registry, isSubmit ? f['workflow'] : f['service'], isSubmit ? 'run' : f['handler'], f['key']);
          if (isSubmit && spec.mode !== 'workflow') throw new IngressError(400, 'INVALID_FRAME', `'${spec.service}' is not a workflow`);
          const isSend = f['type'] !== 'call';
          const delay = f['delay'];
          if (delay !== undefined && typeof delay !== 'number' && typeof delay !== 'string') throw new IngressError(400, 'INVALID_DELAY', 'delay must be a number or a string');
          const idem = f['idempotencyKey'];
          if (idem !== undefined && typeof idem !== 'string') throw new IngressError(400, 'INVALID_IDEMPOTENCY_KEY', 'idempotencyKey must be a string');
          const headers = f['headers'];
          const request = buildRequest(spec, key, { json: f['input'] }, rules, {
            send: isSend,
            ...(delay !== undefined ? { delay: delay as string | number } : {}),
            ...(idem !== undefined ? { idempotencyKey: idem } : {}),
            ...(headers !== undefined ? { headers: frameHeaders(headers, rules) } : {}),
          });
          const ac = new Stopper();
          const accepted = await store.accept(request, isSend ? {} : { awaitOutcome: ac.signal });
          if (!isSend && accepted.status === 'PreviouslyAccepted' && accepted.reason === 'workflow' && idem === undefined) {
            ac.abort();
            throw new IngressError(409, 'WORKFLOW_ALREADY_INVOKED', 'the workflow method was already invoked');
          }
          // The cancel token goes only to the client whose request created the invocation.
          send({
            id,
            type: 'accepted',
            invocationId: accepted.invocationId,
            status: accepted.status,
            ...(accepted.cancelToken !== undefined ? { cancelToken: accepted.cancelToken } : {}),
          });
          if (!isSend) awaitResult(id, accepted.invocationId, spec.output, ac, accepted.outcome);
          return;
        }
        case 'attach': {
          const { inv, output } = await target(f);
          awaitResult(id, inv, output);
          return;
        }
        case 'output': {
          const { inv, output } = await target(f);
          const info = await store.describe(inv);
          if (!info?.outcome) throw new IngressError(470, 'NOT_READY', 'the invocation exists but has not completed yet');
          send(outcomeFrame(id, inv, info.outcome, output));
          return;
        }
        case 'subscribe': {
          if (subscriptions.size >= maxSubs) throw new IngressError(429, 'TOO_MANY_SUBSCRIPTIONS', `a socket may hold at most ${maxSubs} subscriptions`);
          const { inv, output } = await target(f);
          if (subscriptions.size >= maxSubs) throw new IngressError(429, 'TOO_MANY_SUBSCRIPTIONS', `a socket may hold at most ${maxSubs} subscriptions`);
          send({ id, type: 'subscribed', invocationId: inv });
          const ac = new Stopper();
          const watcher = progress.watch(inv, (event) => send({ id, type: 'event', invocationId: inv, event }));
          const stop = (): void => {
            ac.abort();
            watcher.stop();
            subscriptions.delete(id);
          };
          open.set(id, stop);
          subscriptions.add(id);
          store
            .awaitOutcome(inv, ac.signal)
            .then(async (o) => {
              await watcher.flush();
              if (open.get(id) !== stop) return;
              stop();
              open.delete(id);
              send(outcomeFrame(id, inv, o, output));
            })
            .catch(() => undefined);
          return;
        }
        case 'unsubscribe': {
          const sub = f['subscription'];
          if (typeof sub !== 'string' || !open.has(sub)) throw new IngressError(404, 'NOT_FOUND', 'no such subscription');
          open.get(sub)!();
          open.delete(sub);
          send({ id, type: 'unsubscribed' });
          return;
        }
        case 'resolveAwakeable':
        case 'rejectAwakeable': {
          const awk = f['awakeableId'];
          if (typeof awk !== 'string') throw new IngressError(400, 'INVALID_FRAME', 'awakeableId must be a string');
          const reason = f['reason'];
          if (f['type'] === 'rejectAwakeable' && reason !== undefined && typeof reason !== 'string') throw new IngressError(400, 'INVALID_FRAME', 'reason must be a string');
          const completion =
            f['type'] === 'resolveAwakeable'
              ? f['value'] === undefined
                ? ({ ok: true } as const)
                : ({ ok: true, v: JSON.stringify(f['value']) } as const)
              : ({ ok: false, e: { name: 'TerminalError', code: 'TERMINAL', message: (reason as string | undefined) ?? 'rejected', status: 500 } } as const);
          await resolveAwakeable(registry, store, awk, completion);
          send({ id, type: 'ok' });
          return;
        }
        case 'cancel': {
          // Only the client that started the invocation holds its cancel token (given in `accepted`);
          // operators cancel anything through the admin API.
          const inv = f['invocationId'];
          const token = f['token'];
          if (typeof inv !== 'string') throw new IngressError(400, 'INVALID_FRAME', 'invocationId must be a string');
          if (token !== undefined && typeof token !== 'string') throw new IngressError(400, 'INVALID_FRAME', 'token must be a string');
          if (token === undefined || !(await store.cancel(inv, { token }))) {
            throw new IngressError(404, 'NOT_FOUND', `invocation ${inv.slice(0, 256)} not found, already completed, or not started by this client (give its cancel token)`);
          }
          send({ id, type: 'ok' });
          return;
        }
        default:
          throw new IngressError(400, 'UNKNOWN_TYPE', `unknown frame type ${JSON.stringify(f['type'])}`);
      }
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        fail(undefined, new IngressError(400, 'INVALID_FRAME', 'binary frames are not supported; send JSON text'));
        return;
      }
      let f: unknown;
      try {
        f = parseFrame(String(data), rules.maxJsonDepth);
      } catch (e) {
        fail(undefined, e);
        return;
      }
      if (typeof f !== 'object' || f === null || Array.isArray(f)) {
        fail(undefined, new IngressError(400, 'INVALID_FRAME', 'a frame must be a JSON object'));
        return;
      }
      const frame = f as Frame;
      const id = frame['id'];
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) {
        fail(undefined, new IngressError(400, 'INVALID_FRAME', `every request needs an id: a string of 1 to ${MAX_ID} characters`));
        return;
      }
      if (open.has(id)) {
        fail(id, new IngressError(400, 'DUPLICATE_ID', `request id ${id} is still in use`));
        return;
      }
      if (open.size + handling >= maxOpen) {
        fail(id, new IngressError(429, 'TOO_MANY_REQUESTS', `a socket may have at most ${maxOpen} requests open at once`));
        return;
      }
      handling++;
      handle(frame, id)
        .catch((e: unknown) => fail(id, e))
        .finally(() => handling--);
    });
  });

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  return {
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        progress.close();
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
