import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Registry } from '../runtime/registry.js';
import type { Accepted, Outcome } from '../store.js';
import { isJson, type Serde } from '../define/serde.js';
import { IngressError, clientError, errorBody, internalError } from '../errors.js';
import { ingressRules, type Rules } from './input.js';
import { Stopper } from '../runtime/stop-signal.js';
import type { ResultFrame, ServerFrame } from './frames.js';
import { originAllowed, refuseUpgrade } from './ws-upgrade.js';
import {
  IngressOperations,
  type IngressStore,
  type Telemetry,
  type Visible,
} from './operations.js';
import {
  decodeAwakeable,
  decodeCancel,
  decodeEnvelope,
  decodeInvoke,
  decodeRef,
  decodeUnsubscribe,
  noSuchSubscription,
  unknownType,
  type RawFrame,
} from './ws-decode.js';

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
  /**
   * Subscriptions follow the store's live events; as a safety net against a lost event, each
   * subscribed invocation's progress is also read about this often (ms, jittered; 0 = never).
   * Default 60 s.
   */
  progressRereadMs?: number;
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

/**
 * A `result` frame. The value of a handler whose output serde is not JSON is its bytes in base64,
 * marked `encoding: 'base64'`.
 */
function resultFrame(
  id: string,
  invocationId: string,
  o: Outcome,
  output?: Serde<unknown>,
): ResultFrame {
  const head = { id, type: 'result', invocationId } as const;
  if (o.ok && !isJson(output))
    return { ...head, ok: true, value: o.value ?? '', encoding: 'base64' };
  if (o.ok)
    return {
      ...head,
      ok: true,
      ...(o.value === undefined ? {} : { value: JSON.parse(o.value) as unknown }),
    };
  return { ...head, ok: false, error: errorBody(o.error) };
}

/**
 * Serves the WebSocket protocol on an HTTP server's upgrades: calls, sends,
 * workflow submission, attach/output, live subscriptions, awakeables, cancel.
 */
export function attachWebSocket(
  server: Server,
  registry: Registry,
  store: IngressStore,
  options: WebSocketOptions = {},
  rules: Rules = ingressRules(),
  telemetry: Telemetry = {},
): { close(): Promise<void> } {
  const maxFrame = options.maxFrameBytes ?? 1024 * 1024;
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const path = options.path ?? '/ws';
  const maxOpen = options.maxOpenRequests ?? 1000;
  const maxSubs = options.maxSubscriptions ?? 100;
  const allowed =
    options.allowedOrigins === '*'
      ? '*'
      : new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase()));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxFrame,
    perMessageDeflate: false,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q >= 0 ? url.slice(0, q) : url) !== path) {
      refuseUpgrade(
        socket,
        new IngressError(404, 'NOT_FOUND', `WebSocket upgrades are served on ${path} only`),
      );
      return;
    }
    if (!originAllowed(req, allowed)) {
      refuseUpgrade(
        socket,
        new IngressError(
          403,
          'ORIGIN_NOT_ALLOWED',
          'this origin may not open a WebSocket here (see the allowedOrigins option)',
        ),
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const alive = new WeakMap<WebSocket, boolean>();
  const ops = new IngressOperations(registry, store, {
    transport: 'ws',
    progressRereadMs: options.progressRereadMs,
    ...telemetry,
  });

  const metrics = telemetry.metrics;
  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    metrics?.wsConnection(1);
    ws.once('close', () => metrics?.wsConnection(-1));
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

    const send = (f: ServerFrame): void => {
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
        options.logger?.error(
          `[latchkey] WebSocket ingress error: ${(e as Error).stack ?? String(e)}`,
        );
        err = internalError();
      }
      send({ ...(id !== undefined ? { id } : {}), type: 'error', ...err.body() });
    };

    /** The invocation an attach/output/subscribe frame names (404 unless a client may see it). */
    const target = async (f: RawFrame): Promise<Visible> => {
      const found = await ops.find(decodeRef(f));
      if (!found) throw new IngressError(404, 'NOT_FOUND', 'no such invocation');
      return found;
    };

    /** Sends the result of `invocationId` when `outcome` (default: a fresh wait) settles. */
    const awaitResult = (
      reqId: string,
      invocationId: string,
      output: Serde<unknown> | undefined,
      ac = new Stopper(),
      outcome?: Promise<Outcome>,
    ): void => {
      open.set(reqId, () => ac.abort());
      (outcome ?? ops.attach(invocationId, ac.signal)).then(
        (o) => {
          open.delete(reqId);
          send(resultFrame(reqId, invocationId, o, output));
        },
        () => open.delete(reqId),
      );
    };

    const subscribe = async (f: RawFrame, id: string): Promise<void> => {
      const tooMany = (): IngressError =>
        new IngressError(
          429,
          'TOO_MANY_SUBSCRIPTIONS',
          `a socket may hold at most ${maxSubs} subscriptions`,
        );
      if (subscriptions.size >= maxSubs) throw tooMany();
      const { info, output } = await target(f);
      if (subscriptions.size >= maxSubs) throw tooMany();
      const inv = info.id;
      send({ id, type: 'subscribed', invocationId: inv });
      const ac = new Stopper();
      const watcher = ops.watch(inv, (event) =>
        send({ id, type: 'event', invocationId: inv, event }),
      );
      const stop = (): void => {
        ac.abort();
        watcher.stop();
        if (subscriptions.delete(id)) metrics?.wsSubscription(-1);
      };
      open.set(id, stop);
      subscriptions.add(id);
      metrics?.wsSubscription(1);
      ops
        .attach(inv, ac.signal)
        .then(async (o) => {
          await watcher.flush();
          if (open.get(id) !== stop) return;
          stop();
          open.delete(id);
          send(resultFrame(id, inv, o, output));
        })
        .catch(() => undefined);
    };

    const handle = async (f: RawFrame, id: string): Promise<void> => {
      switch (f['type']) {
        case 'ping':
          send({ id, type: 'pong' });
          return;
        case 'call':
        case 'send':
        case 'submit': {
          const named = f['type'] === 'submit' ? f['workflow'] : f['service'];
          const missing = typeof named === 'string' ? registry.ensure(named) : undefined;
          if (missing) await missing;
          const { send: isSend, request, output } = decodeInvoke(f, registry, rules);
          const ac = new Stopper();
          const accepted: Accepted & { outcome?: Promise<Outcome> } = isSend
            ? await ops.send(request)
            : await ops.call(request, ac);
          // The cancel token goes only to the client whose request created the invocation.
          send({
            id,
            type: 'accepted',
            invocationId: accepted.invocationId,
            status: accepted.status,
            ...(accepted.cancelToken !== undefined ? { cancelToken: accepted.cancelToken } : {}),
          });
          if (!isSend) awaitResult(id, accepted.invocationId, output, ac, accepted.outcome);
          return;
        }
        case 'attach': {
          const { info, output } = await target(f);
          awaitResult(id, info.id, output);
          return;
        }
        case 'output': {
          const found = await target(f);
          send(resultFrame(id, found.info.id, ops.output(found), found.output));
          return;
        }
        case 'subscribe':
          return subscribe(f, id);
        case 'unsubscribe': {
          const { subscription } = decodeUnsubscribe(f);
          const stop = open.get(subscription);
          if (!stop) throw noSuchSubscription();
          stop();
          open.delete(subscription);
          send({ id, type: 'unsubscribed' });
          return;
        }
        case 'resolveAwakeable':
        case 'rejectAwakeable': {
          const a = decodeAwakeable(f);
          if (a.type === 'resolveAwakeable') {
            await ops.resolveAwakeable(
              a.awakeableId,
              a.value === undefined ? undefined : JSON.stringify(a.value),
            );
          } else await ops.rejectAwakeable(a.awakeableId, a.reason ?? 'rejected');
          send({ id, type: 'ok' });
          return;
        }
        case 'cancel': {
          // Only the client that started the invocation holds its cancel token (given in `accepted`);
          // operators cancel anything through the admin API.
          const c = decodeCancel(f);
          await ops.cancel(c.invocationId, c.token);
          send({ id, type: 'ok' });
          return;
        }
        default:
          throw unknownType(f);
      }
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        fail(
          undefined,
          new IngressError(400, 'INVALID_FRAME', 'binary frames are not supported; send JSON text'),
        );
        return;
      }
      let frame: RawFrame;
      try {
        frame = decodeEnvelope(textOf(data), rules.maxJsonDepth);
      } catch (e) {
        fail(undefined, e);
        return;
      }
      const id = frame.id;
      if (open.has(id)) {
        fail(id, new IngressError(400, 'DUPLICATE_ID', `request id ${id} is still in use`));
        return;
      }
      if (open.size + handling >= maxOpen) {
        fail(
          id,
          new IngressError(
            429,
            'TOO_MANY_REQUESTS',
            `a socket may have at most ${maxOpen} requests open at once`,
          ),
        );
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
        ops.close();
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A text frame's data as a string (ws hands a Buffer; fragments and ArrayBuffers just in case). */
function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
