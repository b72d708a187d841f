import { CallError } from './errors.js';
import type {
  AnyObject,
  AnyService,
  AnyWorkflow,
  CallOptions,
  ConnectOptions,
  ConnectionState,
  DefinitionRef,
  GenericRequest,
  HandlerClient,
  HandlerOutput,
  HandlerSendClient,
  InvocationTarget,
  Output,
  ProgressEvent,
  ReconnectOptions,
  RequestOptions,
  SendOptions,
  SendResult,
  SubmitArgs,
  SubmitOptions,
  Subscription,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/**
 * A client of Latchkey's WebSocket ingress (docs/PROTOCOL.md): typed calls,
 * sends, workflow submission, attach/output, live progress subscriptions,
 * awakeables and cancellation, multiplexed over one WebSocket.
 *
 * @remarks
 * The client reconnects on its own (exponential backoff) and never loses a
 * result: after a reconnection it re-sends every open request: a call that
 * was accepted is re-sent as an `attach` by invocation id (a result that
 * completed while the socket was down arrives at once), subscriptions are
 * re-sent as `subscribe` (events already yielded are skipped), and requests
 * issued while disconnected are queued and sent in order.
 *
 * A call or send that was sent but not yet `accepted` when the socket dropped
 * is ambiguous: the server may or may not have started it. The client gives
 * every call and send an idempotency key (unless `idempotencyKeys: false` or
 * one was given), so it simply re-sends the request: the server dedupes it and
 * answers the first invocation's id and result. A workflow's `run` gets no
 * generated key (the workflow id dedupes it); an ambiguous `run` call is
 * re-sent as a `submit` followed by an `attach`, so it attaches to the
 * workflow run instead of failing with 409 (even if, unknown to the client,
 * someone else had started that workflow id first). With
 * `idempotencyKeys: false` an ambiguous call or send without key fails with
 * `AMBIGUOUS` instead. Awakeable resolutions and cancellations are re-sent
 * as well; if the first one had been applied, the re-sent one fails with 404.
 * A re-sent `submit` answers `PreviouslyAccepted` if the first one arrived.
 *
 * Timeouts and aborts only stop the client from waiting: an invocation that
 * was accepted keeps running (cancel it with {@link LatchkeyClient.cancel}).
 */
export interface LatchkeyClient {
  /** The connection's state: `connecting`, `open`, `reconnecting` (waiting to retry) or `closed`. */
  readonly state: ConnectionState;
  /** Resolves when the socket is open (at once if it is); rejects once the client is closed. */
  ready(): Promise<void>;
  /**
   * Closes the socket for good: open requests fail with `CLIENT_CLOSED`,
   * subscriptions end with that error.
   */
  close(): Promise<void>;

  /**
   * A typed request-response client of a service: one method per handler,
   * `(input, opts?) => Promise<result>`.
   *
   * @example
   * ```ts
   * const greeting = await client.serviceClient(greeter).greet({ name: 'Ada' });
   * ```
   */
  serviceClient<D extends AnyService>(def: DefinitionRef<D>): HandlerClient<D>;
  /** A typed request-response client of a virtual object at `key`. */
  objectClient<D extends AnyObject>(def: DefinitionRef<D>, key: string): HandlerClient<D>;
  /**
   * A typed request-response client of a workflow at `key`. Calling `run`
   * starts the workflow and waits for its result (409 if that workflow id
   * already ran, unless an `idempotencyKey` is given); the other handlers are
   * its shared handlers.
   */
  workflowClient<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string): HandlerClient<D>;
  /**
   * A typed one-way client of a service: each method starts an invocation and
   * resolves with its id once the server accepted it.
   *
   * @example
   * ```ts
   * const { invocationId } = await client.serviceSendClient(mailer).send(msg, { delay: 60_000 });
   * ```
   */
  serviceSendClient<D extends AnyService>(def: DefinitionRef<D>): HandlerSendClient<D>;
  /** A typed one-way client of a virtual object at `key`. */
  objectSendClient<D extends AnyObject>(def: DefinitionRef<D>, key: string): HandlerSendClient<D>;
  /** A typed one-way client of a workflow at `key`. */
  workflowSendClient<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string): HandlerSendClient<D>;
  /** Calls any handler by name and waits for its result. */
  call<T = unknown>(request: GenericRequest, opts?: CallOptions): Promise<T>;
  /** Starts any handler by name without waiting for its result. */
  send(request: GenericRequest, opts?: SendOptions): Promise<SendResult>;

  /**
   * Starts workflow `key` (once: a workflow id already submitted answers
   * `PreviouslyAccepted` with the existing invocation id).
   *
   * @example
   * ```ts
   * const { invocationId } = await client.workflowSubmit(signup, 'user-42', 'ada@example.com');
   * const account = await client.workflowAttach(signup, 'user-42');
   * ```
   */
  workflowSubmit<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, ...args: SubmitArgs<D>): Promise<SendResult>;
  /** Waits for the result of workflow `key`'s run. */
  workflowAttach<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, opts?: RequestOptions): Promise<HandlerOutput<D, 'run'>>;
  /**
   * The result of workflow `key`'s run if it completed (`{ ready: true, result }`),
   * else `{ ready: false }`; rejects with the workflow's failure.
   */
  workflowOutput<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, opts?: RequestOptions): Promise<Output<HandlerOutput<D, 'run'>>>;
  /** Waits for the result of an invocation (by id, workflow + key, or idempotency key). */
  attach<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<T>;
  /** The result of an invocation if it completed, without waiting. */
  output<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<Output<T>>;
  /**
   * Subscribes to an invocation's progress: an async iterator of status and
   * journal events that ends with the result.
   *
   * @example
   * ```ts
   * for await (const ev of client.subscribe({ workflow: 'signup', key: 'user-42' })) {
   *   if (ev.kind === 'journal') console.log('step', ev.entry.n);
   *   if (ev.kind === 'result') console.log(ev.ok ? ev.value : ev.error.message);
   * }
   * ```
   */
  subscribe<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Subscription<T>;
  /** Resolves an awakeable (its id comes from `ctx.awakeable()`). */
  resolveAwakeable(awakeableId: string, value?: unknown, opts?: RequestOptions): Promise<void>;
  /** Rejects an awakeable: the awaiting handler gets a `TerminalError` with `reason`. */
  rejectAwakeable(awakeableId: string, reason: string, opts?: RequestOptions): Promise<void>;
  /**
   * Requests cancellation of an invocation (its callers get 409 once it ends). The public ingress
   * cancels only an invocation the requester started: this client sends the cancel token the
   * server gave it when it started the invocation (kept for its most recent 10,000 invocations),
   * or `opts.token` (e.g. a `SendResult.cancelToken` kept elsewhere). Without one the server
   * answers 404; operators cancel anything through the admin API.
   */
  cancel(invocationId: string, opts?: RequestOptions & { token?: string }): Promise<void>;
}

type Frame = Record<string, unknown>;

/** Cancel tokens a client keeps (see {@link LatchkeyClient.cancel}). */
const MAX_CANCEL_TOKENS = 10_000;

const WS_OPEN = 1;
const DEFAULT_MAX_FRAME = 1024 * 1024;

/** What an operation needs from the client. */
interface Host {
  readonly defaultTimeout: number | undefined;
  remove(id: string): void;
  /** Registers an op under `id` (ghost unsubscribers). */
  register(op: Op): void;
  write(f: Frame): boolean;
  nextId(): string;
  isOpen(): boolean;
  /** Keeps the cancel token the server gave for an invocation this client started. */
  keepCancelToken(invocationId: string, token: unknown): void;
}

/** An open request, keyed by its frame id. */
interface Op {
  readonly id: string;
  /** The frame to (re)send on an open socket; undefined when there is nothing to send. */
  frame(): Frame | undefined;
  /** The frame from {@link Op.frame} was handed to the socket. */
  written?(): void;
  /** The socket dropped. */
  disconnected(): void;
  /** A frame with this op's id arrived. */
  receive(f: Frame): void;
  /** Ends the op with an error. */
  fail(e: CallError): void;
}

function nameOf(def: string | { name: string }): string {
  return typeof def === 'string' ? def : def.name;
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.randomUUID) {
    try {
      return c.randomUUID();
    } catch {
      // insecure browser context: fall through
    }
  }
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function targetFields(t: InvocationTarget): Frame {
  if (typeof t === 'string') return { invocationId: t };
  if ('invocationId' in t) return { invocationId: t.invocationId };
  if ('workflow' in t) return { workflow: nameOf(t.workflow), key: t.key };
  return { service: nameOf(t.service), handler: t.handler, idempotencyKey: t.idempotencyKey, ...(t.key !== undefined ? { key: t.key } : {}) };
}

function errorOf(f: Frame): CallError {
  const invocationId = typeof f['invocationId'] === 'string' ? f['invocationId'] : undefined;
  const e = (f['type'] === 'result' ? f['error'] : f) as { code?: unknown; errorCode?: unknown; message?: unknown; issues?: unknown; metadata?: unknown } | undefined;
  const status = typeof e?.code === 'number' ? e.code : 500;
  const code = typeof e?.errorCode === 'string' ? e.errorCode : String(e?.errorCode ?? 'UNKNOWN');
  const message = typeof e?.message === 'string' ? e.message : 'request failed';
  return new CallError(status, code, message, {
    ...(invocationId !== undefined ? { invocationId } : {}),
    ...(e?.issues !== undefined ? { issues: e.issues } : {}),
    ...(typeof e?.metadata === 'object' && e.metadata !== null ? { metadata: e.metadata as Record<string, string> } : {}),
  });
}

/**
 * A frame's input: bytes (for a handler whose input serde is not JSON, such as `serde.binary`)
 * travel as a base64 string; anything else as JSON.
 */
function wireInput(input: unknown): unknown {
  if (!(input instanceof Uint8Array)) return input;
  let bin = '';
  for (const b of input) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A result frame's value: bytes when the server marks it `encoding: 'base64'` (an output serde that is not JSON). */
function resultValue(f: Frame): unknown {
  const v = f['value'];
  if (f['encoding'] !== 'base64' || typeof v !== 'string') return v;
  const bin = atob(v);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function abortError(signal: AbortSignal): CallError {
  return new CallError(499, 'ABORTED', 'the request was aborted', { cause: signal.reason });
}

/** Timeout, abort and bookkeeping shared by every operation. */
abstract class BaseOp implements Op {
  protected finished = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private signal: AbortSignal | undefined;
  private onAbort: (() => void) | undefined;

  protected readonly host: Host;
  readonly id: string;

  constructor(host: Host, id: string) {
    this.host = host;
    this.id = id;
  }

  /** Starts the timeout and abort listener; false (and failed) when the signal is already aborted. */
  arm(opts: RequestOptions | undefined): boolean {
    const signal = opts?.signal;
    if (signal?.aborted) {
      this.fail(abortError(signal));
      return false;
    }
    const timeout = opts?.timeout ?? this.host.defaultTimeout;
    if (timeout !== undefined && Number.isFinite(timeout) && timeout >= 0) {
      this.timer = setTimeout(() => this.fail(new CallError(408, 'TIMEOUT', `no answer within ${timeout} ms`)), timeout);
    }
    if (signal) {
      this.signal = signal;
      this.onAbort = () => this.fail(abortError(signal));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    return true;
  }

  /** Marks the op done and forgets it; false if it already was. */
  protected finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    this.host.remove(this.id);
    return true;
  }

  abstract frame(): Frame | undefined;
  abstract disconnected(): void;
  abstract receive(f: Frame): void;
  abstract fail(e: CallError): void;
}

type RequestKind = 'call' | 'send' | 'submit' | 'attach' | 'output' | 'ok';

/** A request answered by one promise: call, send, submit, attach, output, awakeables, cancel. */
class RequestOp<T> extends BaseOp {
  readonly promise: Promise<T>;
  private resolve!: (v: T) => void;
  private reject!: (e: CallError) => void;
  private invocationId: string | undefined;
  private sent = false;
  /** An ambiguous workflow `run` call re-sent as `submit`: attach once accepted. */
  private thenAttach = false;

  private readonly kind: RequestKind;
  private request: Frame;
  private readonly workflowRun: boolean;

  constructor(host: Host, id: string, kind: RequestKind, request: Frame, workflowRun: boolean) {
    super(host, id);
    this.kind = kind;
    this.request = request;
    this.workflowRun = workflowRun;
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  written(): void {
    this.sent = true;
  }

  frame(): Frame {
    if (this.kind === 'call' && this.invocationId !== undefined) return { id: this.id, type: 'attach', invocationId: this.invocationId };
    return this.request;
  }

  disconnected(): void {
    if (this.finished || !this.sent || this.invocationId !== undefined) return;
    if ((this.kind === 'call' || this.kind === 'send') && this.request['idempotencyKey'] === undefined) {
      // Sent, not accepted, no idempotency key: the server may or may not have started it.
      if (this.workflowRun) {
        if (this.kind === 'call') {
          const input = this.request['input'];
          this.request = { id: this.id, type: 'submit', workflow: this.request['service'], key: this.request['key'], ...(input !== undefined ? { input } : {}) };
          this.thenAttach = true;
        }
        // A workflow `send` is deduped by the workflow id: re-send it as is.
        return;
      }
      this.fail(new CallError(503, 'AMBIGUOUS', 'the connection dropped before the server accepted the request; it may or may not have started (use an idempotency key to retry safely)'));
    }
  }

  receive(f: Frame): void {
    if (this.finished) return;
    switch (f['type']) {
      case 'accepted': {
        const invocationId = String(f['invocationId']);
        const token = f['cancelToken'];
        this.host.keepCancelToken(invocationId, token);
        if (this.kind === 'send' || this.kind === 'submit') {
          const result: SendResult = { invocationId, status: f['status'] === 'PreviouslyAccepted' ? 'PreviouslyAccepted' : 'Accepted' };
          if (typeof token === 'string') result.cancelToken = token;
          if (this.finish()) this.resolve(result as T);
          return;
        }
        this.invocationId = invocationId;
        if (this.thenAttach) this.host.write(this.frame());
        return;
      }
      case 'result': {
        if (!this.finish()) return;
        if (f['ok'] === true) {
          const value = resultValue(f);
          this.resolve((this.kind === 'output' ? { ready: true, result: value } : value) as T);
        } else this.reject(errorOf(f));
        return;
      }
      case 'ok':
        if (this.finish()) this.resolve(undefined as T);
        return;
      case 'error':
        if (!this.finish()) return;
        if (this.kind === 'output' && f['code'] === 470) this.resolve({ ready: false } as T);
        else this.reject(errorOf(f));
        return;
      default:
        if (this.finish()) this.reject(new CallError(502, 'PROTOCOL', `unexpected answer ${JSON.stringify(f['type'])}`));
    }
  }

  fail(e: CallError): void {
    if (this.finish()) this.reject(e);
  }
}

/** Forgets a subscription the server confirms after the client gave it up: unsubscribes it. */
class GhostOp implements Op {
  private readonly host: Host;
  readonly id: string;
  constructor(host: Host, id: string) {
    this.host = host;
    this.id = id;
  }
  frame(): undefined {
    return undefined;
  }
  disconnected(): void {
    this.host.remove(this.id);
  }
  receive(f: Frame): void {
    if (f['type'] === 'subscribed') this.host.write({ id: this.host.nextId(), type: 'unsubscribe', subscription: this.id });
    if (f['type'] !== 'event') this.host.remove(this.id);
  }
  fail(): void {
    this.host.remove(this.id);
  }
}

/** A live subscription: buffers progress events for its async iterator. */
class SubscriptionOp<T> extends BaseOp implements Subscription<T> {
  private invId: string | undefined;
  /** The server confirmed the subscription on the current socket. */
  private confirmed = false;
  /** A subscribe frame is out on the current socket. */
  private pending = false;
  private nextIndex = 0;
  private lastStatus: string | undefined;
  private readonly buffer: ProgressEvent<T>[] = [];
  private waiter: { resolve: (r: IteratorResult<ProgressEvent<T>>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private error: CallError | undefined;

  private readonly target: Frame;

  constructor(host: Host, id: string, target: Frame) {
    super(host, id);
    this.target = target;
  }

  get invocationId(): string | undefined {
    return this.invId;
  }

  frame(): Frame {
    this.pending = true;
    this.confirmed = false;
    return { id: this.id, type: 'subscribe', ...(this.invId !== undefined ? { invocationId: this.invId } : this.target) };
  }

  disconnected(): void {
    this.pending = false;
    this.confirmed = false;
  }

  receive(f: Frame): void {
    if (this.finished) return;
    const invocationId = typeof f['invocationId'] === 'string' ? f['invocationId'] : (this.invId ?? '');
    switch (f['type']) {
      case 'subscribed':
        this.invId = invocationId;
        this.pending = false;
        this.confirmed = true;
        return;
      case 'event': {
        const ev = f['event'] as { kind?: string; status?: string; index?: number; entry?: { k: string; n?: string } } | undefined;
        if (ev?.kind === 'journal' && typeof ev.index === 'number') {
          // After a re-subscription the server may replay the journal: skip what was yielded.
          if (ev.index < this.nextIndex) return;
          this.nextIndex = ev.index + 1;
          this.push({ kind: 'journal', invocationId, index: ev.index, entry: ev.entry ?? { k: 'unknown' } });
        } else if (ev?.kind === 'status' && typeof ev.status === 'string') {
          if (ev.status === this.lastStatus) return;
          this.lastStatus = ev.status;
          this.push({ kind: 'status', invocationId, status: ev.status as never });
        }
        return;
      }
      case 'result':
        this.finish();
        this.confirmed = false;
        if (f['ok'] === true) this.push({ kind: 'result', invocationId, ok: true, value: resultValue(f) as T });
        else this.push({ kind: 'result', invocationId, ok: false, error: errorOf(f) });
        this.end(undefined);
        return;
      case 'error':
        this.fail(errorOf(f));
        return;
      default:
        this.fail(new CallError(502, 'PROTOCOL', `unexpected answer ${JSON.stringify(f['type'])}`));
    }
  }

  fail(e: CallError): void {
    if (!this.finish()) return;
    this.release();
    this.end(e);
  }

  /** Tells the server to stop (now, or once it confirms the subscription). */
  private release(): void {
    if (!this.host.isOpen()) return;
    if (this.confirmed) this.host.write({ id: this.host.nextId(), type: 'unsubscribe', subscription: this.id });
    else if (this.pending) this.host.register(new GhostOp(this.host, this.id));
    this.confirmed = false;
    this.pending = false;
  }

  private push(ev: ProgressEvent<T>): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: ev, done: false });
    } else this.buffer.push(ev);
  }

  private end(error: CallError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      if (error) {
        this.error = undefined;
        w.reject(error);
      } else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ProgressEvent<T>>> {
    const ev = this.buffer.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.ended) {
      if (this.error) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<ProgressEvent<T>>> {
    if (this.finish()) this.release();
    this.buffer.length = 0;
    this.end(undefined);
    this.error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  async unsubscribe(): Promise<void> {
    await this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function loadDefaultWebSocket(): Promise<WebSocketConstructor> {
  const g = globalThis as { process?: { versions?: { node?: string } }; WebSocket?: WebSocketConstructor };
  if (typeof g.process?.versions?.node === 'string') {
    // Under Node.js: the `ws` package (a variable specifier keeps bundlers for browsers from resolving it).
    const specifier = 'ws';
    return (import(specifier) as Promise<{ default?: WebSocketConstructor; WebSocket?: WebSocketConstructor }>).then((m) => {
      const ctor = m.default ?? m.WebSocket;
      if (!ctor) throw new Error("the 'ws' package exports no WebSocket");
      return ctor;
    });
  }
  if (g.WebSocket) return Promise.resolve(g.WebSocket);
  return Promise.reject(new Error('no WebSocket implementation found: pass options.WebSocket'));
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

class Client implements LatchkeyClient, Host {
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
  private readonly autoKeys: boolean;
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
    this.autoKeys = options.idempotencyKeys ?? true;
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
      this.shutdown(new CallError(503, 'DISCONNECTED', `cannot open ${this.url}: ${(e as Error).message}`, { cause: e }));
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
    const id = (f as Frame)['id'];
    if (typeof id !== 'string') return;
    this.ops.get(id)?.receive(f as Frame);
  }

  private onClose(): void {
    this.ws = undefined;
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (this.st === 'closed') return;
    for (const op of [...this.ops.values()]) op.disconnected();
    if (this.reconnect === false) {
      this.shutdown(new CallError(503, 'DISCONNECTED', 'the connection was lost (reconnecting is off)'));
      return;
    }
    this.setState('reconnecting');
    this.attempt++;
    if (this.attempt > this.reconnect.maxAttempts) {
      this.shutdown(new CallError(503, 'DISCONNECTED', `gave up reconnecting after ${this.reconnect.maxAttempts} attempts`));
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
    if (this.st === 'closed') return Promise.reject(new CallError(499, 'CLIENT_CLOSED', 'the client is closed'));
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

  write(f: Frame): boolean {
    return this.sendFrame(f);
  }

  nextId(): string {
    return (++this.seq).toString(36);
  }

  isOpen(): boolean {
    return this.st === 'open';
  }

  // ------------------------------------------------------------ requests

  private start<T>(kind: RequestKind, frame: Frame, opts: RequestOptions | undefined, workflowRun = false): Promise<T> {
    const op = new RequestOp<T>(this, frame['id'] as string, kind, frame, workflowRun);
    if (this.st === 'closed') {
      op.fail(new CallError(499, 'CLIENT_CLOSED', 'the client is closed'));
      return op.promise;
    }
    const text = JSON.stringify(frame);
    if (text.length * 3 > this.maxFrame && byteLength(text) > this.maxFrame) {
      op.fail(new CallError(413, 'FRAME_TOO_LARGE', `the request is larger than ${this.maxFrame} bytes`));
      return op.promise;
    }
    if (!op.arm(opts)) return op.promise;
    this.ops.set(op.id, op);
    if (this.st === 'open') this.push(op);
    return op.promise;
  }

  private invoke(
    type: 'call' | 'send',
    service: string,
    key: string | undefined,
    handler: string,
    input: unknown,
    opts: SendOptions | undefined,
    workflowRun: boolean,
  ): Promise<unknown> {
    const idempotencyKey = opts?.idempotencyKey ?? (this.autoKeys && !workflowRun ? `lkc-${randomId()}` : undefined);
    const frame: Frame = {
      id: this.nextId(),
      type,
      service,
      handler,
      ...(key !== undefined ? { key } : {}),
      ...(input !== undefined ? { input: wireInput(input) } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(opts?.headers !== undefined ? { headers: opts.headers } : {}),
      ...(type === 'send' && opts?.delay !== undefined ? { delay: opts.delay } : {}),
    };
    return this.start(type, frame, opts, workflowRun);
  }

  private proxy(service: string, key: string | undefined, type: 'call' | 'send', workflow: boolean): never {
    return new Proxy(Object.create(null) as object, {
      get: (_t, prop) => {
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        return (input?: unknown, opts?: SendOptions) => this.invoke(type, service, key, prop, input, opts, workflow && prop === 'run');
      },
    }) as never;
  }

  serviceClient<D extends AnyService>(def: DefinitionRef<D>): HandlerClient<D> {
    return this.proxy(nameOf(def), undefined, 'call', false);
  }
  objectClient<D extends AnyObject>(def: DefinitionRef<D>, key: string): HandlerClient<D> {
    return this.proxy(nameOf(def), key, 'call', false);
  }
  workflowClient<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string): HandlerClient<D> {
    return this.proxy(nameOf(def), key, 'call', true);
  }
  serviceSendClient<D extends AnyService>(def: DefinitionRef<D>): HandlerSendClient<D> {
    return this.proxy(nameOf(def), undefined, 'send', false);
  }
  objectSendClient<D extends AnyObject>(def: DefinitionRef<D>, key: string): HandlerSendClient<D> {
    return this.proxy(nameOf(def), key, 'send', false);
  }
  workflowSendClient<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string): HandlerSendClient<D> {
    return this.proxy(nameOf(def), key, 'send', true);
  }

  call<T = unknown>(request: GenericRequest, opts?: CallOptions): Promise<T> {
    return this.invoke('call', request.service, request.key, request.handler, request.input, opts, false) as Promise<T>;
  }

  send(request: GenericRequest, opts?: SendOptions): Promise<SendResult> {
    return this.invoke('send', request.service, request.key, request.handler, request.input, opts, false) as Promise<SendResult>;
  }

  workflowSubmit<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, ...args: SubmitArgs<D>): Promise<SendResult> {
    const [input, opts] = args as [unknown, SubmitOptions | undefined];
    const frame: Frame = {
      id: this.nextId(),
      type: 'submit',
      workflow: nameOf(def),
      key,
      ...(input !== undefined ? { input: wireInput(input) } : {}),
      ...(opts?.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}),
      ...(opts?.delay !== undefined ? { delay: opts.delay } : {}),
    };
    return this.start('submit', frame, opts);
  }

  workflowAttach<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, opts?: RequestOptions): Promise<HandlerOutput<D, 'run'>> {
    return this.attach({ workflow: nameOf(def), key }, opts);
  }

  workflowOutput<D extends AnyWorkflow>(def: DefinitionRef<D>, key: string, opts?: RequestOptions): Promise<Output<HandlerOutput<D, 'run'>>> {
    return this.output({ workflow: nameOf(def), key }, opts);
  }

  attach<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<T> {
    return this.start('attach', { id: this.nextId(), type: 'attach', ...targetFields(target) }, opts);
  }

  output<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<Output<T>> {
    return this.start('output', { id: this.nextId(), type: 'output', ...targetFields(target) }, opts);
  }

  subscribe<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Subscription<T> {
    const op = new SubscriptionOp<T>(this, this.nextId(), targetFields(target));
    if (this.st === 'closed') {
      op.fail(new CallError(499, 'CLIENT_CLOSED', 'the client is closed'));
      return op;
    }
    if (!op.arm(opts)) return op;
    this.ops.set(op.id, op);
    if (this.st === 'open') this.push(op);
    return op;
  }

  resolveAwakeable(awakeableId: string, value?: unknown, opts?: RequestOptions): Promise<void> {
    return this.start('ok', { id: this.nextId(), type: 'resolveAwakeable', awakeableId, ...(value !== undefined ? { value } : {}) }, opts);
  }

  rejectAwakeable(awakeableId: string, reason: string, opts?: RequestOptions): Promise<void> {
    return this.start('ok', { id: this.nextId(), type: 'rejectAwakeable', awakeableId, reason }, opts);
  }

  cancel(invocationId: string, opts?: RequestOptions & { token?: string }): Promise<void> {
    const token = opts?.token ?? this.cancelTokens.get(invocationId);
    return this.start('ok', { id: this.nextId(), type: 'cancel', invocationId, ...(token !== undefined ? { token } : {}) }, opts);
  }

  /** Cancel tokens of the invocations this client started, oldest first (at most {@link MAX_CANCEL_TOKENS}). */
  private readonly cancelTokens = new Map<string, string>();

  keepCancelToken(invocationId: string, token: unknown): void {
    if (typeof token !== 'string') return;
    this.cancelTokens.delete(invocationId);
    this.cancelTokens.set(invocationId, token);
    if (this.cancelTokens.size > MAX_CANCEL_TOKENS) this.cancelTokens.delete(this.cancelTokens.keys().next().value!);
  }

  /** Writes an op's frame, if it has one, and tells it. */
  private push(op: Op): void {
    const f = op.frame();
    if (f && this.sendFrame(f)) op.written?.();
  }

  private sendFrame(f: Frame): boolean {
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

/**
 * Connects to a Latchkey ingress over one WebSocket and returns a client.
 * The socket opens in the background; requests made before it is open are
 * queued (`await client.ready()` to wait for it).
 *
 * @param url The ingress's WebSocket URL, e.g. `ws://localhost:8080/ws`
 *   (`http(s)://` is accepted and turned into `ws(s)://`; in a browser a
 *   relative URL such as `/ws` is resolved against the page).
 * @param options Transport, reconnection, default timeout, idempotency keys, keep-alive.
 *
 * @example
 * ```ts
 * import { connect } from '@latchkey/client';
 * import type { greeter } from './services.js';
 *
 * const client = connect('ws://localhost:8080/ws');
 * const text = await client.serviceClient<typeof greeter>({ name: 'greeter' }).greet('Ada', { timeout: 5000 });
 * await client.close();
 * ```
 */
export function connect(url: string, options: ConnectOptions = {}): LatchkeyClient {
  // In a page, a relative URL (`/ws`) is resolved against the page's address.
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  const u = base !== undefined ? new URL(url, base) : new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`unsupported URL scheme ${u.protocol}; use ws:// or wss://`);
  return new Client(u.toString(), options);
}
