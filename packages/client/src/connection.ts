/**
 * The client's one WebSocket: opening it, the connection's state, keep-alive pings, reconnecting
 * with backoff and re-sending every open request on the new socket, and routing answers to the
 * open requests by id.
 */
import type { ClientFrame, ServerFrame } from '@latchkey/core/protocol';
import { CallError } from './errors.js';
import type { Host, Op } from './requests.js';
import type {
  ConnectOptions,
  ConnectionState,
  ReconnectOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
import { byteLength } from './wire.js';

/** Cancel tokens a client keeps (see `LatchkeyClient.cancel`). */
const MAX_CANCEL_TOKENS = 10_000;

const WS_OPEN = 1;
const DEFAULT_MAX_FRAME = 1024 * 1024;

function loadDefaultWebSocket(): Promise<WebSocketConstructor> {
  const g = globalThis as {
    process?: { versions?: { node?: string } };
    WebSocket?: WebSocketConstructor;
  };
  if (typeof g.process?.versions?.node === 'string') {
    // Under Node.js: the `ws` package (a variable specifier keeps bundlers for browsers from resolving it).
    const specifier = 'ws';
    return (
      import(specifier) as Promise<{
        default?: WebSocketConstructor;
        WebSocket?: WebSocketConstructor;
      }>
    ).then((m) => {
      const ctor = m.default ?? m.WebSocket;
      if (!ctor) throw new Error("the 'ws' package exports no WebSocket");
      return ctor;
    });
  }
  if (g.WebSocket) return Promise.resolve(g.WebSocket);
  return Promise.reject(new Error('no WebSocket implementation found: pass options.WebSocket'));
}

/** The connection of a client: its socket, and the requests open on it. */
export class Connection implements Host {
  private readonly ops = new Map<string, Op>();
  private ws: WebSocketLike | undefined;
  private st: ConnectionState = 'connecting';
  private seq = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  private heard = false;
  private pinged = false;
  private readyWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private readonly ctor: Promise<WebSocketConstructor>;
  private readonly reconnect: Required<ReconnectOptions> | false;
  private readonly keepAliveMs: number;
  private readonly maxFrame: number;
  readonly defaultTimeout: number | undefined;

  private readonly url: string;
  private readonly options: ConnectOptions;

  constructor(url: string, options: ConnectOptions) {
    this.url = url;
    this.options = options;
    this.ctor = options.WebSocket ? Promise.resolve(options.WebSocket) : loadDefaultWebSocket();
    // Keep an early failure from being reported as unhandled; open() reports it.
    this.ctor.catch(() => undefined);
    const r = options.reconnect;
    this.reconnect =
      r === false
        ? false
        : {
            initialDelayMs: r?.initialDelayMs ?? 100,
            maxDelayMs: r?.maxDelayMs ?? 5000,
            factor: r?.factor ?? 2,
            jitter: r?.jitter ?? 0.2,
            maxAttempts: r?.maxAttempts ?? Infinity,
          };
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.maxFrame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    this.defaultTimeout = options.timeout;
    void this.open();
  }

  // ------------------------------------------------------------ connection

  get state(): ConnectionState {
    return this.st;
  }

  private setState(s: ConnectionState): void {
    if (this.st === s) return;
    this.st = s;
    try {
      this.options.onStateChange?.(s);
    } catch {
      // a listener's error is not the client's
    }
  }

  private async open(): Promise<void> {
    let Ctor: WebSocketConstructor;
    try {
      Ctor = await this.ctor;
    } catch (e) {
      this.shutdown(new CallError(503, 'DISCONNECTED', (e as Error).message, { cause: e }));
      return;
    }
    if (this.st === 'closed') return;
    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.url, this.options.protocols ?? ['latchkey.v1']);
    } catch (e) {
      this.shutdown(
        new CallError(503, 'DISCONNECTED', `cannot open ${this.url}: ${(e as Error).message}`, {
          cause: e,
        }),
      );
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws === ws) this.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onMessage(ev.data);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.onClose();
    };
    ws.onerror = () => undefined; // a close event follows
  }

  private onOpen(): void {
    this.attempt = 0;
    this.setState('open');
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    this.heard = false;
    this.pinged = false;
    if (this.keepAliveMs > 0) {
      this.keepAliveTimer = setInterval(() => this.keepAlive(), this.keepAliveMs);
      (this.keepAliveTimer as { unref?: () => void }).unref?.();
    }
    for (const op of [...this.ops.values()]) {
      if (this.st !== 'open') break;
      if (this.ops.get(op.id) !== op) continue;
      this.push(op);
    }
  }

  private keepAlive(): void {
    if (this.st !== 'open' || !this.ws) return;
    if (this.pinged && !this.heard) {
      // Nothing arrived since the last ping: the socket is dead.
      const ws = this.ws;
      this.onClose();
      const t = ws as WebSocketLike & { terminate?: () => void };
      try {
        if (t.terminate) t.terminate();
        else t.close(4000, 'keep-alive timeout');
      } catch {
        // already closed
      }
      return;
    }
    this.heard = false;
    this.pinged = true;
    this.sendFrame({ id: this.nextId(), type: 'ping' });
  }

  private onMessage(data: unknown): void {
    this.heard = true;
    if (typeof data !== 'string') return;
    let f: unknown;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof f !== 'object' || f === null) return;
    // An answer is routed by its id; the op it reaches checks the rest.
    const id = (f as { id?: unknown }).id;
    if (typeof id !== 'string') return;
    this.ops.get(id)?.receive(f as ServerFrame);
  }

  private onClose(): void {
    this.ws = undefined;
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (this.st === 'closed') return;
    for (const op of [...this.ops.values()]) op.disconnected();
    if (this.reconnect === false) {
      this.shutdown(
        new CallError(503, 'DISCONNECTED', 'the connection was lost (reconnecting is off)'),
      );
      return;
    }
    this.setState('reconnecting');
    this.attempt++;
    if (this.attempt > this.reconnect.maxAttempts) {
      this.shutdown(
        new CallError(
          503,
          'DISCONNECTED',
          `gave up reconnecting after ${this.reconnect.maxAttempts} attempts`,
        ),
      );
      return;
    }
    const { initialDelayMs, maxDelayMs, factor, jitter } = this.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * Math.pow(factor, this.attempt - 1));
    const delay = Math.max(0, base * (1 + jitter * (2 * Math.random() - 1)));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.st === 'closed') return;
      this.setState('connecting');
      void this.open();
    }, delay);
  }

  private shutdown(e: CallError): void {
    if (this.st === 'closed') return;
    this.setState('closed');
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.reconnectTimer = undefined;
    this.keepAliveTimer = undefined;
    for (const op of [...this.ops.values()]) op.fail(e);
    this.ops.clear();
    for (const w of this.readyWaiters.splice(0)) w.reject(e);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      try {
        ws.close(1000, 'client closed');
      } catch {
        // not open yet, or already closed
      }
    }
  }

  ready(): Promise<void> {
    if (this.st === 'open') return Promise.resolve();
    if (this.st === 'closed')
      return Promise.reject(new CallError(499, 'CLIENT_CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  close(): Promise<void> {
    this.shutdown(new CallError(499, 'CLIENT_CLOSED', 'the client was closed'));
    return Promise.resolve();
  }

  // ------------------------------------------------------------ Host

  remove(id: string): void {
    this.ops.delete(id);
  }

  register(op: Op): void {
    this.ops.set(op.id, op);
  }

  write(f: ClientFrame): boolean {
    return this.sendFrame(f);
  }

  nextId(): string {
    return (++this.seq).toString(36);
  }

  isOpen(): boolean {
    return this.st === 'open';
  }

  // ------------------------------------------------------------ open requests

  /** Why a request cannot start, if it cannot: the client is closed, or the frame too large. */
  protected refusal(frame: ClientFrame | undefined): CallError | undefined {
    if (this.st === 'closed') return new CallError(499, 'CLIENT_CLOSED', 'the client is closed');
    if (frame === undefined) return undefined;
    const text = JSON.stringify(frame);
    if (text.length * 3 > this.maxFrame && byteLength(text) > this.maxFrame) {
      return new CallError(
        413,
        'FRAME_TOO_LARGE',
        `the request is larger than ${this.maxFrame} bytes`,
      );
    }
    return undefined;
  }

  /** Keeps an armed op open and sends its frame when the socket is open (else once it is). */
  protected enqueue(op: Op): void {
    this.ops.set(op.id, op);
    if (this.st === 'open') this.push(op);
  }

  /** Cancel tokens of the invocations this client started, oldest first (at most {@link MAX_CANCEL_TOKENS}). */
  private readonly cancelTokens = new Map<string, string>();

  keepCancelToken(invocationId: string, token: unknown): void {
    if (typeof token !== 'string') return;
    this.cancelTokens.delete(invocationId);
    this.cancelTokens.set(invocationId, token);
    if (this.cancelTokens.size > MAX_CANCEL_TOKENS)
      this.cancelTokens.delete(this.cancelTokens.keys().next().value!);
  }

  /** The cancel token kept for an invocation this client started. */
  protected cancelTokenOf(invocationId: string): string | undefined {
    return this.cancelTokens.get(invocationId);
  }

  /** Writes an op's frame, if it has one, and tells it. */
  private push(op: Op): void {
    const f = op.frame();
    if (f && this.sendFrame(f)) op.written?.();
  }

  private sendFrame(f: ClientFrame): boolean {
    const ws = this.ws;
    if (this.st !== 'open' || !ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(JSON.stringify(f));
      return true;
    } catch {
      return false; // the close event follows; the op is re-sent after reconnecting
    }
  }
}
