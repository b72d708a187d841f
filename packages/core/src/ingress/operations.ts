/**
 * The ingress core: what a public client may do, whatever the transport (HTTP in `http.ts`, the
 * WebSocket in `ws.ts`). Each operation takes already-parsed, typed input and returns a typed
 * result or throws an {@link IngressError}; the transports only parse requests and serialize
 * answers. The business rules live here once: the workflow already invoked (409), the awakeable
 * rejection, what a public client may see of an invocation (not one of an `ingressPrivate`
 * handler), who may cancel.
 */
import type { Serde } from '../define/serde.js';
import { parseAwakeableId } from '../context/secrets.js';
import { ErrorCode, IngressError } from '../errors.js';
import type { Completion } from '../journal/entry.js';
import type { Registry } from '../runtime/registry.js';
import type { Stopper, StopSignal } from '../runtime/stop-signal.js';
import type {
  Accepted,
  IngressStore,
  InvocationInfo,
  InvocationRequest,
  Outcome,
} from '../store.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { IngressTrace, Tracing } from '../telemetry/tracing.js';
import { checkReference, outputOf, publicTarget } from './common.js';
import type { InvocationRef, ProgressEvent } from './frames.js';
import { ProgressWatchers } from './progress.js';

/** What the ingress core needs of the store (the store's ingress-facing interface). */
export type { IngressStore };

/** An invocation a public client may see, and its handler's output serde (if served here). */
export interface Visible {
  info: InvocationInfo;
  output: Serde<unknown> | undefined;
}

/** The accepted call, and its outcome once it completes. */
export type AcceptedCall = Accepted & { outcome: Promise<Outcome> };

/** A live subscription to an invocation's progress. */
export interface ProgressWatch {
  stop(): void;
  /** Resolves once every entry and status known so far has reached the listener. */
  flush(): Promise<void>;
}

/** What a refused or failed request's span records of the error. */
function refusal(e: unknown): { code?: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  return {
    ...(typeof err.code === 'string' ? { code: err.code } : {}),
    message: typeof err.message === 'string' ? err.message : String(e),
  };
}

/** Which ingress a request came through (a label of the request metrics). */
export type Transport = 'http' | 'ws' | 'admin';

/** What watches a process: its tracing and its metrics (each optional). */
export interface Telemetry {
  /** Traces each request to start an invocation (an `ingress` span). */
  tracing?: Tracing | undefined;
  /** Counts requests and accepted invocations. */
  metrics?: Metrics | undefined;
}

/** What the ingress core runs with besides the registry and the store. */
export interface OperationsOptions extends Telemetry {
  transport: Transport;
  /** See {@link ProgressWatchers}. */
  progressRereadMs?: number | undefined;
}

/** The operations of the public ingresses (HTTP and WebSocket) on one registry and store. */
export class IngressOperations {
  private readonly registry: Registry;
  private readonly store: IngressStore;
  private readonly progress: ProgressWatchers;
  private readonly tracing: Tracing | undefined;
  private readonly metrics: Metrics | undefined;
  private readonly transport: Transport;

  constructor(registry: Registry, store: IngressStore, options: OperationsOptions) {
    this.registry = registry;
    this.store = store;
    this.progress = new ProgressWatchers(store, options.progressRereadMs);
    this.tracing = options.tracing;
    this.metrics = options.metrics;
    this.transport = options.transport;
  }

  /** Counts an accepted request (a fresh invocation, or one an earlier invocation matched). */
  private counted(request: InvocationRequest, a: Accepted): void {
    const m = this.metrics;
    if (!m) return;
    const fresh = a.status === 'Accepted';
    m.request(this.transport, fresh ? 'accepted' : 'duplicate');
    if (fresh) m.accepted(request.target.service, request.target.handler);
  }

  /**
   * The request's `ingress` span, under the client's `traceparent`; the invocation is kept under
   * the span's context (so every attempt continues the client's trace).
   */
  private traced(request: InvocationRequest): IngressTrace | undefined {
    const t = this.tracing?.ingress(request.target, request.headers);
    if (t) request.trace = t.kept;
    return t;
  }

  /** The store's accept, counted, and its failure recorded on the request's span. */
  private async accept(
    request: InvocationRequest,
    t: IngressTrace | undefined,
    awaitOutcome?: StopSignal,
  ): Promise<Accepted & { outcome?: Promise<Outcome> }> {
    let accepted;
    try {
      accepted = await this.store.accept(request, awaitOutcome ? { awaitOutcome } : undefined);
    } catch (e) {
      t?.end(refusal(e));
      throw e;
    }
    this.counted(request, accepted);
    return accepted;
  }

  /** Starts an invocation without waiting for it (a send, a workflow submission). */
  async send(request: InvocationRequest): Promise<Accepted> {
    const t = this.traced(request);
    const accepted = await this.accept(request, t);
    if (t) {
      t.accepted(accepted);
      t.end();
    }
    return accepted;
  }

  /**
   * Starts an invocation and waits for its outcome until `stop` fires. A workflow's `run` called
   * again without an idempotency key is refused (409 `WORKFLOW_ALREADY_INVOKED`, and `stop` fires):
   * a workflow runs once per id; attach to it instead. `extra`: further fields of that answer.
   */
  async call(
    request: InvocationRequest,
    stop: Stopper,
    extra: Record<string, unknown> = {},
  ): Promise<AcceptedCall> {
    const t = this.traced(request);
    const accepted = await this.accept(request, t, stop.signal);
    if (t) {
      // The span lasts until the caller has its answer (or stops waiting).
      t.accepted(accepted);
      accepted.outcome?.then(
        (o) => t.end(o.ok ? undefined : o.error),
        (e: unknown) => t.end(refusal(e)),
      );
    }
    if (
      accepted.status === 'PreviouslyAccepted' &&
      accepted.reason === 'workflow' &&
      request.idempotencyKey === undefined
    ) {
      stop.abort();
      throw new IngressError(
        409,
        ErrorCode.WORKFLOW_ALREADY_INVOKED,
        'the workflow method was already invoked',
        extra,
      );
    }
    return accepted as AcceptedCall;
  }

  /**
   * The invocation a reference names (by id, idempotency key or workflow id), if it exists and a
   * public client may see it; undefined otherwise (the transport answers its own 404). A
   * reference by name is checked first (400 `INVALID_REFERENCE`, `INVALID_KEY`, …).
   */
  async find(ref: InvocationRef): Promise<Visible | undefined> {
    return this.findById(await this.lookup(ref));
  }

  /** The invocation a reference names, without checking that a public client may see it. */
  async lookup(ref: InvocationRef): Promise<string | undefined> {
    if ('invocationId' in ref) return ref.invocationId;
    checkReference(ref);
    return this.store.lookup(ref);
  }

  /** {@link find} by invocation id. */
  async findById(id: string | undefined): Promise<Visible | undefined> {
    const info = id === undefined ? undefined : await this.store.describe(id);
    // An ingressPrivate handler's invocation is not there for a public client.
    if (!info || !publicTarget(this.registry, info.target)) return undefined;
    return { info, output: outputOf(this.registry, info.target) };
  }

  /**
   * The outcome of a completed invocation; 470 `NOT_READY` while it runs (`extra`: further
   * fields of that answer).
   */
  output(found: Visible, extra: Record<string, unknown> = {}): Outcome {
    const outcome = found.info.outcome;
    if (!outcome) {
      throw new IngressError(
        470,
        ErrorCode.NOT_READY,
        'the invocation exists but has not completed yet',
        extra,
      );
    }
    return outcome;
  }

  /** Waits for an invocation's outcome (until `signal` fires). */
  attach(invocationId: string, signal?: StopSignal): Promise<Outcome> {
    return this.store.awaitOutcome(invocationId, signal);
  }

  /**
   * Watches an invocation's progress: every journal entry (kind and name) and status change, the
   * ones so far first. One watcher per invocation in this process, fed by the store's live
   * events, serves all its subscribers.
   */
  watch(invocationId: string, listener: (e: ProgressEvent) => void): ProgressWatch {
    return this.progress.watch(invocationId, listener);
  }

  /** Resolves an awakeable with a JSON value (its text; undefined for none). */
  resolveAwakeable(awakeableId: string, json: string | undefined): Promise<void> {
    const completion: Completion = json === undefined ? { ok: true } : { ok: true, v: json };
    return this.completeAwakeable(awakeableId, completion);
  }

  /** Rejects an awakeable: the awaiting handler gets a `TerminalError` with `reason`. */
  rejectAwakeable(awakeableId: string, reason: string): Promise<void> {
    const e = { name: 'TerminalError', code: ErrorCode.TERMINAL, message: reason, status: 500 };
    return this.completeAwakeable(awakeableId, { ok: false, e });
  }

  /**
   * Completes an awakeable for a public client: 400 for a malformed id, 404 unless it names an
   * awakeable of a public invocation that waits for exactly this id and has no completion yet, 429
   * when the invocation holds the most completions it may.
   */
  private async completeAwakeable(id: string, completion: Completion): Promise<void> {
    const parsed = parseAwakeableId(id);
    if (!parsed) {
      throw new IngressError(
        400,
        ErrorCode.INVALID_AWAKEABLE_ID,
        `malformed awakeable id ${JSON.stringify(id.slice(0, 256))}`,
      );
    }
    const info = await this.store.describe(parsed.invocationId);
    const r =
      info && publicTarget(this.registry, info.target)
        ? await this.store.resolveAwakeable(id, completion)
        : 'refused';
    if (r === 'full') {
      throw new IngressError(
        429,
        ErrorCode.TOO_MANY_COMPLETIONS,
        `invocation ${parsed.invocationId} holds the most completions it may take`,
      );
    }
    if (r !== 'ok') {
      const message = `awakeable ${id} not found or already completed`;
      throw new IngressError(404, ErrorCode.NOT_FOUND, message);
    }
  }

  /**
   * Cancels an invocation for the client that started it: only with its cancel token (given when
   * it was accepted); operators cancel anything through the admin API. 404 otherwise.
   */
  async cancel(invocationId: string, token: string | undefined): Promise<void> {
    if (token === undefined || !(await this.store.cancel(invocationId, { token }))) {
      throw new IngressError(
        404,
        ErrorCode.NOT_FOUND,
        `invocation ${invocationId.slice(0, 256)} not found, already completed, ` +
          'or not started by this client (give its cancel token)',
      );
    }
  }

  /** Stops every progress watcher. */
  close(): void {
    this.progress.close();
  }
}
