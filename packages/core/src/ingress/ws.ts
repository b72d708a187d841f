import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Entry } from '../journal/entry.js';
import type { Registry } from '../runtime/registry.js';
import type { InvocationStatus, Outcome, Store } from '../store.js';
import { IngressError, buildRequest, findHandler, safeParse } from './http.js';
import { Stopper } from '../runtime/stop-signal.js';

/** Options of the WebSocket ingress (see docs/PROTOCOL.md). */
export interface WebSocketOptions {
  /** Largest accepted frame (bytes); larger ones close the socket with 1009. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Largest send buffer of a socket (bytes) before it is closed with 1013. Default 8 MiB. */
  maxBufferedBytes?: number;
  /** Ping period (ms); a socket that missed the previous ping is closed. Default 15 s. */
  heartbeatMs?: number;
  /** How often a subscribed invocation's progress is polled (ms). Default 200. */
  pollMs?: number;
}

type Frame = Record<string, unknown>;

type ProgressEvent = { kind: 'status'; status: InvocationStatus } | { kind: 'journal'; index: number; entry: { k: string; n?: string } };

interface Watcher {
  listeners: Set<(e: ProgressEvent) => void>;
  timer: NodeJS.Timeout | undefined;
  status: InvocationStatus | undefined;
  /** Every journal entry reported so far, replayed to late subscribers. */
  described: { k: string; n?: string }[];
  /** The poll in progress, if any. */
  running: Promise<void> | undefined;
  poll(): Promise<void>;
}

const MAX_ID = 128;

function outcomeFrame(id: string, invocationId: string, o: Outcome): Frame {
  if (o.ok) return { id, type: 'result', invocationId, ok: true, ...(o.value === undefined ? {} : { value: JSON.parse(o.value) as unknown }) };
  const status = o.error.status ?? 500;
  return { id, type: 'result', invocationId, ok: false, error: { code: status, errorCode: o.error.code, message: o.error.message } };
}

function describeEntry(e: Entry): { k: string; n?: string } {
  return 'n' in e && typeof e.n === 'string' ? { k: e.k, n: e.n } : { k: e.k };
}

/**
 * Serves the WebSocket protocol on an HTTP server's upgrades: calls, sends,
 * workflow submission, attach/output, live subscriptions, awakeables, cancel.
 */
export function attachWebSocket(server: Server, registry: Registry, store: Store, options: WebSocketOptions = {}): { close(): Promise<void> } {
  const maxFrame = options.maxFrameBytes ?? 1024 * 1024;
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const pollMs = options.pollMs ?? 200;
  const wss = new WebSocketServer({ server, maxPayload: maxFrame, perMessageDeflate: false });
  const alive = new WeakMap<WebSocket, boolean>();
  const watchers = new Map<string, Watcher>();

  /**
   * Shares one progress poller per invocation among all its subscribers in this
   * process. A late subscriber first gets every entry reported so far and the
   * current status, so each subscriber sees the whole journal.
   */
  const watch = (invocationId: string, listener: (e: ProgressEvent) => void): { stop(): void; flush(): Promise<void> } => {
    let w = watchers.get(invocationId);
    if (!w) {
      const nw: Watcher = {
        listeners: new Set(),
        timer: undefined,
        status: undefined,
        described: [],
        running: undefined,
        poll: () => {
          if (nw.running) return nw.running;
          nw.running = (async () => {
            try {
              const p = await store.progress(invocationId, nw.described.length);
              if (!p) return;
              for (const e of p.entries) {
                const index = nw.described.length;
                const entry = describeEntry(e);
                nw.described.push(entry);
                for (const l of nw.listeners) l({ kind: 'journal', index, entry });
              }
              if (p.status !== nw.status) {
                nw.status = p.status;
                for (const l of nw.listeners) l({ kind: 'status', status: p.status });
              }
            } catch {
              // Redis unreachable: the next poll tries again
            } finally {
              nw.running = undefined;
            }
          })();
          return nw.running;
        },
      };
      w = nw;
      watchers.set(invocationId, nw);
      nw.timer = setInterval(() => void nw.poll(), pollMs);
      nw.timer.unref();
      void nw.poll();
    } else {
      w.described.forEach((entry, index) => listener({ kind: 'journal', index, entry }));
      if (w.status !== undefined) listener({ kind: 'status', status: w.status });
    }
    w.listeners.add(listener);
    const ww = w;
    return {
      stop: () => {
        ww.listeners.delete(listener);
        if (ww.listeners.size === 0) {
          clearInterval(ww.timer);
          watchers.delete(invocationId);
        }
      },
      flush: async () => {
        // Let a poll in progress finish, then take one more look: the last entries and the
        // completed status reach the subscriber before its result.
        if (ww.running) await ww.running;
        await ww.poll();
      },
    };
  };

  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));
    const open = new Map<string, () => void>();
    const closeAll = (): void => {
      for (const stop of open.values()) stop();
      open.clear();
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
      const err = e instanceof IngressError ? e : new IngressError(500, 'INTERNAL', (e as Error).message ?? 'internal error');
      if ((e as { code?: string }).code === 'REDIS_WIPED') {
        send({ ...(id !== undefined ? { id } : {}), type: 'error', code: 503, errorCode: 'REDIS_WIPED', message: (e as Error).message });
        return;
      }
      send({ ...(id !== undefined ? { id } : {}), type: 'error', code: err.status, errorCode: err.errorCode, message: err.message, ...err.extra });
    };

    /** Resolves the invocation an attach/output/subscribe frame names. */
    const target = async (f: Frame): Promise<string> => {
      const str = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
      let id: string | undefined;
      if (str('invocationId')) id = str('invocationId');
      else if (str('workflow') && str('key') !== undefined) id = await store.lookup({ workflow: str('workflow')!, key: str('key')! });
      else if (str('service') && str('handler') && str('idempotencyKey')) {
        const key = str('key');
        id = await store.lookup({ service: str('service')!, handler: str('handler')!, idempotencyKey: str('idempotencyKey')!, ...(key !== undefined ? { key } : {}) });
      } else throw new IngressError(400, 'INVALID_FRAME', 'name the invocation: invocationId, workflow + key, or service + handler + idempotencyKey');
      if (id === undefined || !(await store.describe(id))) throw new IngressError(404, 'NOT_FOUND', 'no such invocation');
      return id;
    };

    /** Sends the result of `invocationId` when `outcome` (default: a fresh wait) settles. */
    const awaitResult = (reqId: string, invocationId: string, ac = new Stopper(), outcome?: Promise<Outcome>): void => {
      open.set(reqId, () => ac.abort());
      (outcome ?? store.awaitOutcome(invocationId, ac.signal)).then(
        (o) => {
          open.delete(reqId);
          send(outcomeFrame(reqId, invocationId, o));
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
          if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))) {
            throw new IngressError(400, 'INVALID_FRAME', 'headers must be an object of strings');
          }
          const request = buildRequest(spec, key, f['input'], {
            send: isSend,
            ...(delay !== undefined ? { delay: delay as string | number } : {}),
            ...(idem !== undefined ? { idempotencyKey: idem as string } : {}),
            ...(headers !== undefined ? { headers: headers as Record<string, string> } : {}),
          });
          const ac = new Stopper();
          const accepted = await store.accept(request, isSend ? {} : { awaitOutcome: ac.signal });
          if (!isSend && accepted.status === 'PreviouslyAccepted' && accepted.reason === 'workflow' && idem === undefined) {
            ac.abort();
            throw new IngressError(409, 'WORKFLOW_ALREADY_INVOKED', 'the workflow method was already invoked');
          }
          send({ id, type: 'accepted', invocationId: accepted.invocationId, status: accepted.status });
          if (!isSend) awaitResult(id, accepted.invocationId, ac, accepted.outcome);
          return;
        }
        case 'attach': {
          const inv = await target(f);
          awaitResult(id, inv);
          return;
        }
        case 'output': {
          const inv = await target(f);
          const info = await store.describe(inv);
          if (!info?.outcome) throw new IngressError(470, 'NOT_READY', 'the invocation exists but has not completed yet');
          send(outcomeFrame(id, inv, info.outcome));
          return;
        }
        case 'subscribe': {
          const inv = await target(f);
          send({ id, type: 'subscribed', invocationId: inv });
          const ac = new Stopper();
          const watcher = watch(inv, (event) => send({ id, type: 'event', invocationId: inv, event }));
          const stop = (): void => {
            ac.abort();
            watcher.stop();
          };
          open.set(id, stop);
          store
            .awaitOutcome(inv, ac.signal)
            .then(async (o) => {
              await watcher.flush();
              if (open.get(id) !== stop) return;
              stop();
              open.delete(id);
              send(outcomeFrame(id, inv, o));
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
          const completion =
            f['type'] === 'resolveAwakeable'
              ? f['value'] === undefined
                ? ({ ok: true } as const)
                : ({ ok: true, v: JSON.stringify(f['value']) } as const)
              : ({ ok: false, e: { name: 'TerminalError', code: 'TERMINAL', message: String(f['reason'] ?? 'rejected'), status: 500 } } as const);
          if (!(await store.resolveAwakeable(awk, completion))) throw new IngressError(404, 'NOT_FOUND', `awakeable ${awk} not found or already completed`);
          send({ id, type: 'ok' });
          return;
        }
        case 'cancel': {
          const inv = f['invocationId'];
          if (typeof inv !== 'string') throw new IngressError(400, 'INVALID_FRAME', 'invocationId must be a string');
          if (!(await store.cancel(inv))) throw new IngressError(404, 'NOT_FOUND', `invocation ${inv} not found or already completed`);
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
        f = safeParse(String(data));
      } catch (e) {
        fail(undefined, new IngressError(400, 'INVALID_JSON', `invalid JSON: ${(e as Error).message}`));
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
      handle(frame, id).catch((e: unknown) => fail(id, e));
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
        for (const w of watchers.values()) clearInterval(w.timer);
        watchers.clear();
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
