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
  DefinitionRef,
  GenericRequest,
  HandlerClient,
  HandlerOutput,
  HandlerSendClient,
  InvocationTarget,
  LatchkeyClient,
  Output,
  RequestOptions,
  SendOptions,
  SendResult,
  SubmitArgs,
  SubmitOptions,
  Subscription,
} from './types.js';
import { nameOf, randomId, targetFields, wireInput } from './wire.js';

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
