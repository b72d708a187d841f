// Type-only imports: the client never loads @latchkey/core at run time.
import type { Definition, HandlerWrapper, InvocationStatus, ServiceKind } from '@latchkey/core';
import type { CallError } from './errors.js';

// ---------------------------------------------------------------- transport

/** The part of the WebSocket API the client uses (the browser's `WebSocket` and the `ws` package both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket`, or `ws`'s default export). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** How the client reconnects after losing its socket. */
export interface ReconnectOptions {
  /** Delay before the first reconnection attempt (ms); default 100. */
  initialDelayMs?: number;
  /** Largest delay between attempts (ms); default 5000. */
  maxDelayMs?: number;
  /** Growth factor of the delay after every failed attempt; default 2. */
  factor?: number;
  /** Random spread of each delay, as a fraction (0.2 = ±20 %); default 0.2. */
  jitter?: number;
  /**
   * Consecutive failed attempts after which the client gives up: every open
   * request fails with `DISCONNECTED` and the client closes. Default: never.
   */
  maxAttempts?: number;
}

/** State of the client's connection. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * The WebSocket implementation. Default: the `ws` package under Node.js,
   * `globalThis.WebSocket` elsewhere (browsers, Deno, workers).
   */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols to offer; default `['latchkey.v1']`. */
  protocols?: string | string[];
  /** Reconnection with exponential backoff (on by default); `false` fails open requests when the socket drops. */
  reconnect?: ReconnectOptions | false;
  /** Default per-request timeout (ms) for requests that give none; default none. */
  timeout?: number;
  /**
   * Gives every call and send without an `idempotencyKey` a generated one
   * (default true), so that a request that was in flight when the socket
   * dropped can be re-sent safely after reconnecting. Workflow `run`
   * requests get none (the workflow id already dedupes them).
   */
  idempotencyKeys?: boolean;
  /**
   * Sends a `ping` frame this often (ms) and reconnects when the previous one
   * got no answer (and nothing else arrived meanwhile): detects dead sockets.
   * Default 15 000; 0 disables.
   */
  keepAliveMs?: number;
  /** Largest frame the client sends (bytes); larger requests fail with `FRAME_TOO_LARGE`. Default 1 MiB (the server's default). */
  maxFrameBytes?: number;
  /** Called on every change of {@link LatchkeyClient.state}. */
  onStateChange?: (state: ConnectionState) => void;
}

// ---------------------------------------------------------------- request options

/** Options every request accepts. */
export interface RequestOptions {
  /**
   * Stop waiting after this long (ms): the promise rejects with a
   * {@link CallError} `TIMEOUT` (408). The invocation itself keeps running.
   */
  timeout?: number;
  /**
   * Stop waiting when aborted: the promise rejects with a {@link CallError}
   * `ABORTED` (499). A request still queued (not yet sent) is dropped; the
   * invocation of a request already sent keeps running.
   */
  signal?: AbortSignal;
}

/** Options of a request-response call. */
export interface CallOptions extends RequestOptions {
  /** Dedupes the call per (service, key, handler) for the target's idempotency retention. */
  idempotencyKey?: string;
  /** Headers passed to the handler (`ctx.request().headers`). */
  headers?: Record<string, string>;
}

/** Options of a one-way send. */
export interface SendOptions extends CallOptions {
  /** Start the invocation after this delay: milliseconds, `10s`-style or ISO 8601 (`PT10S`). */
  delay?: number | string;
}

/** Options of {@link LatchkeyClient.workflowSubmit}. */
export interface SubmitOptions extends RequestOptions {
  /** Start the workflow after this delay: milliseconds, `10s`-style or ISO 8601. */
  delay?: number | string;
  /** An idempotency key for the submission. */
  idempotencyKey?: string;
}

// ---------------------------------------------------------------- answers

/** What a send or a workflow submission returns once the server accepted it. */
export interface SendResult {
  /** The id of the (possibly already existing) invocation. */
  invocationId: string;
  /** `PreviouslyAccepted` when an idempotency key or the workflow id matched an earlier request. */
  status: 'Accepted' | 'PreviouslyAccepted';
  /**
   * When this request started the invocation: the token that lets this client (or whoever it
   * gives the token to) cancel it through the public ingress. The client keeps it too.
   */
  cancelToken?: string;
}

/** The answer of an `output` request: the result if the invocation completed. */
export type Output<T> = { ready: false } | { ready: true; result: T };

/**
 * Names an invocation: its id, a workflow (definition or name) and key, or a
 * service handler and the idempotency key it was called with.
 */
export type InvocationTarget =
  | string
  | { invocationId: string }
  | { workflow: string | { name: string }; key: string }
  | { service: string | { name: string }; handler: string; key?: string; idempotencyKey: string };

/** One item of a {@link Subscription}: progress events, then the result. */
export type ProgressEvent<T = unknown> =
  /** A status transition (`queued`, `ready`, `running`, `suspended`, `backing-off`, `paused`, `completed`…). */
  | { kind: 'status'; invocationId: string; status: InvocationStatus }
  /** A new journal entry: its index, kind (`run`, `sleep`, `call`…) and name. */
  | { kind: 'journal'; invocationId: string; index: number; entry: { k: string; n?: string } }
  /** The result, always the last item: a value, or the failure as a {@link CallError}. */
  | { kind: 'result'; invocationId: string; ok: true; value: T }
  | { kind: 'result'; invocationId: string; ok: false; error: CallError };

/**
 * A live subscription to an invocation's progress: an async iterator that
 * yields status and journal events, then the result, then ends. Leaving a
 * `for await` loop early (or calling `return()`) unsubscribes. After a
 * reconnection the client re-subscribes and skips events it already yielded.
 */
export interface Subscription<T = unknown> extends AsyncIterableIterator<ProgressEvent<T>> {
  /** The invocation id, once the server confirmed the subscription. */
  readonly invocationId: string | undefined;
  /** Ends the subscription; the iterator finishes. */
  unsubscribe(): Promise<void>;
}

// ---------------------------------------------------------------- typed proxies

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => any;
type FnOf<H> = H extends HandlerWrapper<infer F> ? F : H;
type InputOf<F> = F extends AnyFn
  ? Parameters<F> extends [unknown, infer I, ...unknown[]]
    ? I
    : undefined
  : never;
type OutputOf<F> = F extends AnyFn ? Awaited<ReturnType<F>> : never;
type Args<I, O> = [I] extends [undefined] ? [input?: undefined, opts?: O] : [input: I, opts?: O];

/** The input type of handler `K` of definition `D` (`unknown` for an untyped `{ name }`). */
export type HandlerInput<D, K extends string> =
  D extends Definition<ServiceKind, string, infer H>
    ? unknown extends H
      ? unknown
      : K extends keyof H
        ? InputOf<FnOf<H[K]>>
        : never
    : never;

/** The result type of handler `K` of definition `D` (`unknown` for an untyped `{ name }`). */
export type HandlerOutput<D, K extends string> =
  D extends Definition<ServiceKind, string, infer H>
    ? unknown extends H
      ? unknown
      : K extends keyof H
        ? OutputOf<FnOf<H[K]>>
        : never
    : never;

/** A client of a definition only known by name: any handler, untyped. */
export type UntypedClient<O, R> = Record<string, (input?: unknown, opts?: O) => Promise<R>>;

/**
 * Typed request-response client of a definition: one method per handler,
 * `(input, opts?) => Promise<result>` (the client-side twin of core's `Client<D>`).
 */
export type HandlerClient<D> =
  D extends Definition<ServiceKind, string, infer H>
    ? unknown extends H
      ? UntypedClient<CallOptions, unknown>
      : {
          [K in keyof H]: (
            ...args: Args<InputOf<FnOf<H[K]>>, CallOptions>
          ) => Promise<OutputOf<FnOf<H[K]>>>;
        }
    : never;

/** Typed one-way client of a definition: `(input, opts?) => Promise<{ invocationId, status }>`. */
export type HandlerSendClient<D> =
  D extends Definition<ServiceKind, string, infer H>
    ? unknown extends H
      ? UntypedClient<SendOptions, SendResult>
      : { [K in keyof H]: (...args: Args<InputOf<FnOf<H[K]>>, SendOptions>) => Promise<SendResult> }
    : never;

/** The arguments of {@link LatchkeyClient.workflowSubmit} after the key: the `run` input (optional when it takes none), then options. */
export type SubmitArgs<D> = Args<HandlerInput<D, 'run'>, SubmitOptions>;

/**
 * A definition, or an object carrying only its name (then pass the type
 * explicitly: `client.serviceClient<typeof greeter>({ name: 'greeter' })`).
 */
export type DefinitionRef<D extends { name: string }> = D | { name: D['name']; kind?: never };

/** A service definition (for the client's type parameters). */
export type AnyService = Definition<'service', string, unknown>;
/** A virtual object definition (for the client's type parameters). */
export type AnyObject = Definition<'object', string, unknown>;
/** A workflow definition (for the client's type parameters). */
export type AnyWorkflow = Definition<'workflow', string, unknown>;

/** A call by name (no type information). */
export interface GenericRequest {
  service: string;
  handler: string;
  /** The object/workflow key (none for a service). */
  key?: string;
  input?: unknown;
}

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
  workflowSendClient<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
  ): HandlerSendClient<D>;
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
  workflowSubmit<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    ...args: SubmitArgs<D>
  ): Promise<SendResult>;
  /** Waits for the result of workflow `key`'s run. */
  workflowAttach<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    opts?: RequestOptions,
  ): Promise<HandlerOutput<D, 'run'>>;
  /**
   * The result of workflow `key`'s run if it completed (`{ ready: true, result }`),
   * else `{ ready: false }`; rejects with the workflow's failure.
   */
  workflowOutput<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    opts?: RequestOptions,
  ): Promise<Output<HandlerOutput<D, 'run'>>>;
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
