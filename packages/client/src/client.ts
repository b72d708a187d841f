import type { CallFields, ClientFrame, SubmitFrame } from '@latchkey/core/protocol';
import { Connection } from './connection.js';
import { RequestOp, type RequestKind } from './requests.js';
import { SubscriptionOp } from './subscription.js';
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
  RequestOptions,
  SendOptions,
  SendResult,
  SubmitArgs,
  SubmitOptions,
  Subscription,
} from './types.js';
import { nameOf, randomId, targetFields, wireInput } from './wire.js';

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

/** The client: the requests of {@link LatchkeyClient}, over a {@link Connection}. */
class Client extends Connection implements LatchkeyClient {
  private readonly autoKeys: boolean;

  constructor(url: string, options: ConnectOptions) {
    super(url, options);
    this.autoKeys = options.idempotencyKeys ?? true;
  }

  private start<T>(
    kind: RequestKind,
    frame: ClientFrame,
    opts: RequestOptions | undefined,
    workflowRun = false,
  ): Promise<T> {
    const op = new RequestOp<T>(this, frame.id, kind, frame, workflowRun);
    const refused = this.refusal(frame);
    if (refused) {
      op.fail(refused);
      return op.promise;
    }
    if (op.arm(opts)) this.enqueue(op);
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
    const idempotencyKey =
      opts?.idempotencyKey ?? (this.autoKeys && !workflowRun ? `lkc-${randomId()}` : undefined);
    const id = this.nextId();
    const fields: CallFields = {
      service,
      handler,
      ...(key !== undefined ? { key } : {}),
      ...(input !== undefined ? { input: wireInput(input) } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(opts?.headers !== undefined ? { headers: opts.headers } : {}),
    };
    const frame: ClientFrame =
      type === 'send'
        ? { id, type, ...fields, ...(opts?.delay !== undefined ? { delay: opts.delay } : {}) }
        : { id, type, ...fields };
    return this.start(type, frame, opts, workflowRun);
  }

  private proxy(
    service: string,
    key: string | undefined,
    type: 'call' | 'send',
    workflow: boolean,
  ): never {
    return new Proxy(Object.create(null) as object, {
      get: (_t, prop) => {
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        return (input?: unknown, opts?: SendOptions) =>
          this.invoke(type, service, key, prop, input, opts, workflow && prop === 'run');
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
  workflowSendClient<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
  ): HandlerSendClient<D> {
    return this.proxy(nameOf(def), key, 'send', true);
  }

  call<T = unknown>(request: GenericRequest, opts?: CallOptions): Promise<T> {
    return this.invoke(
      'call',
      request.service,
      request.key,
      request.handler,
      request.input,
      opts,
      false,
    ) as Promise<T>;
  }

  send(request: GenericRequest, opts?: SendOptions): Promise<SendResult> {
    return this.invoke(
      'send',
      request.service,
      request.key,
      request.handler,
      request.input,
      opts,
      false,
    ) as Promise<SendResult>;
  }

  workflowSubmit<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    ...args: SubmitArgs<D>
  ): Promise<SendResult> {
    const [input, opts] = args as [unknown, SubmitOptions | undefined];
    const frame: SubmitFrame = {
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

  workflowAttach<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    opts?: RequestOptions,
  ): Promise<HandlerOutput<D, 'run'>> {
    return this.attach({ workflow: nameOf(def), key }, opts);
  }

  workflowOutput<D extends AnyWorkflow>(
    def: DefinitionRef<D>,
    key: string,
    opts?: RequestOptions,
  ): Promise<Output<HandlerOutput<D, 'run'>>> {
    return this.output({ workflow: nameOf(def), key }, opts);
  }

  attach<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<T> {
    return this.start(
      'attach',
      { id: this.nextId(), type: 'attach', ...targetFields(target) },
      opts,
    );
  }

  output<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Promise<Output<T>> {
    return this.start(
      'output',
      { id: this.nextId(), type: 'output', ...targetFields(target) },
      opts,
    );
  }

  subscribe<T = unknown>(target: InvocationTarget, opts?: RequestOptions): Subscription<T> {
    const op = new SubscriptionOp<T>(this, this.nextId(), targetFields(target));
    const refused = this.refusal(undefined);
    if (refused) op.fail(refused);
    else if (op.arm(opts)) this.enqueue(op);
    return op;
  }

  resolveAwakeable(awakeableId: string, value?: unknown, opts?: RequestOptions): Promise<void> {
    return this.start(
      'ok',
      {
        id: this.nextId(),
        type: 'resolveAwakeable',
        awakeableId,
        ...(value !== undefined ? { value } : {}),
      },
      opts,
    );
  }

  rejectAwakeable(awakeableId: string, reason: string, opts?: RequestOptions): Promise<void> {
    return this.start(
      'ok',
      { id: this.nextId(), type: 'rejectAwakeable', awakeableId, reason },
      opts,
    );
  }

  cancel(invocationId: string, opts?: RequestOptions & { token?: string }): Promise<void> {
    const token = opts?.token ?? this.cancelTokenOf(invocationId);
    return this.start(
      'ok',
      {
        id: this.nextId(),
        type: 'cancel',
        invocationId,
        ...(token !== undefined ? { token } : {}),
      },
      opts,
    );
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
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    throw new TypeError(`unsupported URL scheme ${u.protocol}; use ws:// or wss://`);
  return new Client(u.toString(), options);
}
