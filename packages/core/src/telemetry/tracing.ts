/**
 * OpenTelemetry spans of invocations, through `@opentelemetry/api` only: the application picks the
 * SDK and exporter. With no tracer provider registered every call here meets the API's no-op
 * tracer, and an attempt that neither records nor carries a trace context costs one check.
 *
 * The shape (names, attributes, events) is documented in docs/TRACING.md:
 * `ingress <target>` → `attempt <target>` (one per attempt, however many workers and hours apart)
 * → `run <name>` per executed step, `call <target>` / `send <target>` whose child invocations'
 * attempts nest under them, and `invocation <target>` from accept to completion.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  trace,
  type Context,
  type Link,
  type Span,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import type { NewEntry } from '../journal/entry.js';
import type { SerializedError } from '../errors.js';
import type { Accepted, Outcome, StartedInvocation, SuspendOn, Target } from '../store.js';
import { decodeTrace, encodeTrace, parseTraceparent } from './trace-context.js';

/**
 * How a process traces: `false` turns every tracing call off; else the tracer to use (default: the
 * global provider's) and whether a client's `traceparent` becomes the parent of its request's span
 * (`clientContext`, default true; false: each request starts a new trace, linked to the client's
 * context, so a public client cannot put its requests into someone else's trace).
 */
export type TracingOption = boolean | { tracer?: Tracer; clientContext?: boolean };

/** Span attribute and event names (see docs/TRACING.md). */
export const TRACE_ATTR = {
  invocationId: 'latchkey.invocation.id',
  target: 'latchkey.invocation.target',
  key: 'latchkey.invocation.key',
  result: 'latchkey.invocation.result',
  acceptStatus: 'latchkey.invocation.accept_status',
  attempt: 'latchkey.attempt',
  attemptOutcome: 'latchkey.attempt.outcome',
  index: 'latchkey.journal.index',
  entryType: 'latchkey.journal.entry.type',
  entryName: 'latchkey.journal.entry.name',
  timerDue: 'latchkey.timer.due',
  wakeAt: 'latchkey.suspension.wake_at',
  awaiting: 'latchkey.suspension.awaiting',
  retryDelay: 'latchkey.retry.delay_ms',
  errorCode: 'latchkey.error.code',
  runName: 'latchkey.run.name',
} as const;

/** The events an attempt span carries. */
export const TRACE_EVENT = {
  entry: 'latchkey.journal.entry',
  suspended: 'latchkey.suspended',
  leaseLost: 'latchkey.lease_lost',
  eagerRefused: 'latchkey.eager_refused',
} as const;

/** `Service/handler`: what span names carry (keys are attributes, never part of a name). */
function targetName(t: Target): string {
  return `${t.service}/${t.handler}`;
}

function targetAttrs(span: Span, t: Target, id?: string): void {
  span.setAttribute('rpc.system', 'latchkey');
  span.setAttribute('rpc.service', t.service);
  span.setAttribute('rpc.method', t.handler);
  span.setAttribute(TRACE_ATTR.target, targetName(t));
  if (t.key !== undefined) span.setAttribute(TRACE_ATTR.key, t.key);
  if (id !== undefined) span.setAttribute(TRACE_ATTR.invocationId, id);
}

function failed(span: Span, e: SerializedError): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  span.setAttribute(TRACE_ATTR.errorCode, String(e.code ?? e.name));
  span.setAttribute('error.type', e.name);
}

/** Whether a span is worth keeping: it records, or it carries a trace context on. */
function live(span: Span): boolean {
  return span.isRecording() || isSpanContextValid(span.spanContext());
}

/** The tracer of one process and the spans it starts outside attempts. */
export class Tracing {
  private readonly tracer: Tracer;
  private readonly clientContext: boolean;

  private constructor(tracer: Tracer, clientContext: boolean) {
    this.tracer = tracer;
    this.clientContext = clientContext;
  }

  /**
   * The tracing a process runs with: none for `false`, else the given tracer or the global
   * provider's `latchkey` tracer (looked up through the API's proxy, so a provider registered
   * after `serve()` is used too).
   */
  static of(option: TracingOption | undefined): Tracing | undefined {
    if (option === false) return undefined;
    const o = typeof option === 'object' ? option : {};
    return new Tracing(o.tracer ?? trace.getTracer('latchkey'), o.clientContext !== false);
  }

  /** Starts a span under `parent`; undefined when it neither records nor carries a context. */
  start(
    name: string,
    kind: SpanKind,
    parent: Context,
    startTime?: number,
    links?: Link[],
  ): Span | undefined {
    const options: SpanOptions = { kind };
    if (startTime !== undefined) options.startTime = startTime;
    if (links) options.links = links;
    const span = this.tracer.startSpan(name, options, parent);
    return live(span) ? span : undefined;
  }

  /**
   * The span of a client's request to start `target`, under the caller's context: the active
   * span when the application's HTTP instrumentation made one, else the request's `traceparent`
   * and `tracestate` headers (with `clientContext: false`, a link to them from a new trace). Its
   * context is what the invocation is kept under.
   */
  ingress(target: Target, headers: Record<string, string> | undefined): IngressTrace | undefined {
    let parent = context.active();
    let links: Link[] | undefined;
    if (!trace.getSpan(parent)) {
      const sc = parseTraceparent(headers?.['traceparent'], headers?.['tracestate']);
      parent = sc && this.clientContext ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
      if (sc && !this.clientContext) links = [{ context: sc }];
    }
    const span = this.start(
      `ingress ${targetName(target)}`,
      SpanKind.SERVER,
      parent,
      undefined,
      links,
    );
    if (!span) return undefined;
    if (span.isRecording()) targetAttrs(span, target);
    return new IngressTrace(span);
  }

  /** The spans of one attempt (see {@link AttemptTrace}); undefined when nothing is traced. */
  attempt(inv: StartedInvocation, startedAt: number): AttemptTrace | undefined {
    const parent = parentOf(inv.trace);
    const lostAt = inv.lostAttemptStartedAt;
    if (lostAt !== undefined) this.lostAttempt(inv, parent, lostAt, startedAt);
    const span = this.start(`attempt ${targetName(inv.target)}`, SpanKind.CONSUMER, parent);
    if (!span) return undefined;
    if (span.isRecording()) {
      targetAttrs(span, inv.target, inv.id);
      span.setAttribute(TRACE_ATTR.attempt, inv.attempt);
    }
    return new AttemptTrace(this, inv, span, parent, startedAt);
  }

  /** The span of an attempt lost with its worker, recorded by the attempt that took over. */
  private lostAttempt(inv: StartedInvocation, parent: Context, from: number, to: number): void {
    const span = this.start(`attempt ${targetName(inv.target)}`, SpanKind.CONSUMER, parent, from);
    if (!span) return;
    if (span.isRecording()) {
      targetAttrs(span, inv.target, inv.id);
      span.setAttribute(TRACE_ATTR.attempt, inv.attempt - 1);
      span.setAttribute(TRACE_ATTR.attemptOutcome, 'lost');
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'the worker was lost' });
    }
    span.end(Math.max(from, to));
  }
}

/** The context a kept trace names (a fresh root when none). */
function parentOf(kept: string | undefined): Context {
  const sc = decodeTrace(kept);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** An ingress request's span. */
export class IngressTrace {
  readonly span: Span;
  /** The context to keep with the invocation (see `InvocationRequest.trace`). */
  readonly kept: string;

  constructor(span: Span) {
    this.span = span;
    this.kept = encodeTrace(span.spanContext());
  }

  /** The store's answer: the invocation started, or the earlier one a key matched. */
  accepted(a: Accepted): void {
    if (!this.span.isRecording()) return;
    this.span.setAttribute(TRACE_ATTR.invocationId, a.invocationId);
    this.span.setAttribute(TRACE_ATTR.acceptStatus, a.status);
  }

  /** Ends the span: the request was answered (`error`: refused, or failed). */
  end(error?: { code?: string; message: string }): void {
    if (error && this.span.isRecording()) {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      if (error.code) this.span.setAttribute(TRACE_ATTR.errorCode, error.code);
    }
    this.span.end();
  }
}

/** The span of one executed `ctx.run` step. */
export class RunTrace {
  readonly span: Span;
  /** The span's context: the step's closure runs in it. */
  readonly context: Context;

  constructor(span: Span, ctx: Context) {
    this.span = span;
    this.context = ctx;
  }

  /** Runs `action` in the step's context (so the application's spans nest under it). */
  within<T>(action: () => T): T {
    return context.with(this.context, action);
  }

  /** Ends the span: the step returned, or threw `error` (a terminal one is its result). */
  end(error?: SerializedError, retried = false): void {
    if (error && this.span.isRecording()) {
      failed(this.span, error);
      if (retried) this.span.setAttribute(TRACE_ATTR.attemptOutcome, 'retry');
    }
    this.span.end();
  }
}

/** How an attempt ended, as far as its span tells. */
type AttemptEnd =
  | { kind: 'completed'; outcome: Outcome }
  | { kind: 'suspended' }
  | { kind: 'retry'; error: SerializedError; delayMs: number }
  | { kind: 'paused'; error: SerializedError };

/**
 * The spans of one attempt: its own (the handler runs in its context, so the application's spans
 * nest under it), a `run` span per executed step, the `call`/`send` spans its child invocations
 * continue, an event per new journal entry, and at completion the invocation's span.
 */
export class AttemptTrace {
  private readonly tracing: Tracing;
  private readonly inv: StartedInvocation;
  readonly span: Span;
  /** The attempt span's context: handler code runs in it. */
  readonly context: Context;
  private readonly parent: Context;
  private readonly startedAt: number;
  private ended: AttemptEnd | undefined;

  constructor(
    tracing: Tracing,
    inv: StartedInvocation,
    span: Span,
    parent: Context,
    startedAt: number,
  ) {
    this.tracing = tracing;
    this.inv = inv;
    this.span = span;
    this.parent = parent;
    this.startedAt = startedAt;
    this.context = trace.setSpan(parent, span);
  }

  /** A `run` span for the step at `index` (its closure runs in the span's context). */
  run(name: string, index: number): RunTrace | undefined {
    const span = this.tracing.start(`run ${name}`, SpanKind.INTERNAL, this.context);
    if (!span) return undefined;
    if (span.isRecording()) {
      span.setAttribute(TRACE_ATTR.runName, name);
      span.setAttribute(TRACE_ATTR.index, index);
      span.setAttribute(TRACE_ATTR.invocationId, this.inv.id);
    }
    return new RunTrace(span, trace.setSpan(this.context, span));
  }

  /**
   * The trace context a child invocation is started under: a `call` or `send` span (ended at
   * once: the child's attempts, wherever they run, are its children).
   */
  child(kind: 'call' | 'send', target: Target, index: number): string | undefined {
    const span = this.tracing.start(
      `${kind} ${targetName(target)}`,
      SpanKind.PRODUCER,
      this.context,
    );
    if (!span) return undefined;
    if (span.isRecording()) {
      targetAttrs(span, target);
      span.setAttribute(TRACE_ATTR.index, index);
    }
    const kept = encodeTrace(span.spanContext());
    span.end();
    return kept;
  }

  /** An event for a new journal entry (a timer's with its due time, store clock). */
  entry(index: number, e: NewEntry, now: number): void {
    if (!this.span.isRecording()) return;
    const attrs: Record<string, string | number> = {
      [TRACE_ATTR.index]: index,
      [TRACE_ATTR.entryType]: e.k,
    };
    if ('n' in e && e.n !== undefined) attrs[TRACE_ATTR.entryName] = e.n;
    if (e.k === 'sleep') attrs[TRACE_ATTR.timerDue] = new Date(now + e.ms).toISOString();
    this.span.addEvent(TRACE_EVENT.entry, attrs);
  }

  /** The attempt suspended: until its wake time, or a completion of the entries it awaits. */
  suspended(on: SuspendOn): void {
    this.ended = { kind: 'suspended' };
    if (!this.span.isRecording()) return;
    const attrs: Record<string, string | number> = { [TRACE_ATTR.awaiting]: on.awaiting.length };
    if (on.wakeAt !== null) attrs[TRACE_ATTR.wakeAt] = new Date(on.wakeAt).toISOString();
    this.span.addEvent(TRACE_EVENT.suspended, attrs);
  }

  /** The invocation completed with `outcome` in this attempt. */
  completed(outcome: Outcome): void {
    this.ended = { kind: 'completed', outcome };
    const inv = this.inv;
    const span = this.tracing.start(
      `invocation ${targetName(inv.target)}`,
      SpanKind.INTERNAL,
      this.parent,
      Math.min(inv.createdAt ?? this.startedAt, Date.now()),
    );
    if (!span) return;
    if (span.isRecording()) {
      targetAttrs(span, inv.target, inv.id);
      span.setAttribute(TRACE_ATTR.attempt, inv.attempt);
      span.setAttribute(TRACE_ATTR.result, outcome.ok ? 'success' : 'failure');
      if (!outcome.ok) failed(span, outcome.error);
    }
    span.end();
  }

  /** The attempt failed and is retried after `delayMs`. */
  retried(error: SerializedError, delayMs: number): void {
    this.ended = { kind: 'retry', error, delayMs };
  }

  /** The attempt failed and the invocation is paused. */
  paused(error: SerializedError): void {
    this.ended = { kind: 'paused', error };
  }

  /** Ends the attempt span with what happened (`leaseLost`: fenced off, or shut down). */
  end(leaseLost: boolean, eager: boolean): void {
    const span = this.span;
    const end = this.ended;
    if (span.isRecording()) {
      if (!end) {
        span.setAttribute(TRACE_ATTR.attemptOutcome, eager ? 'eager-refused' : 'lease-lost');
        span.addEvent(eager ? TRACE_EVENT.eagerRefused : TRACE_EVENT.leaseLost);
        if (!eager && leaseLost)
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'lease lost' });
      } else {
        span.setAttribute(TRACE_ATTR.attemptOutcome, end.kind);
        if (end.kind === 'completed') {
          span.setAttribute(TRACE_ATTR.result, end.outcome.ok ? 'success' : 'failure');
          if (!end.outcome.ok) failed(span, end.outcome.error);
        } else if (end.kind === 'retry' || end.kind === 'paused') {
          failed(span, end.error);
          if (end.kind === 'retry') span.setAttribute(TRACE_ATTR.retryDelay, end.delayMs);
        }
      }
    }
    span.end();
  }
}
