/**
 * W3C trace context as Latchkey reads and keeps it, and what tracing costs with no provider: no
 * span at all for an untraced attempt, the client's context carried on for a traced one.
 */
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import {
  decodeTrace,
  encodeTrace,
  parseTraceparent,
  traceIdOf,
} from '../src/telemetry/trace-context.js';
import { Tracing } from '../src/telemetry/tracing.js';
import type { StartedInvocation } from '../src/store.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${SPAN}-01`;

describe('traceparent', () => {
  it('parses a version-00 header with its tracestate, and keeps it in one string', () => {
    const sc = parseTraceparent(TP, 'a=1,b=2')!;
    expect(sc).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    expect(sc.traceState?.get('b')).toBe('2');
    const kept = encodeTrace(sc);
    expect(kept).toBe(`${TP};a=1,b=2`);
    expect(decodeTrace(kept)).toMatchObject({ traceId: TRACE, spanId: SPAN });
    expect(traceIdOf(kept)).toBe(TRACE);
    expect(encodeTrace(parseTraceparent(TP)!)).toBe(TP);
  });

  it('takes a later version with more fields, as W3C asks', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-ever`)?.traceId).toBe(TRACE);
  });

  it.each([
    ['missing', undefined],
    ['not a string', 42],
    ['upper-case hex', TP.toUpperCase()],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more fields', `${TP}-extra`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['an all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['too long', `${TP}${' '.repeat(300)}`],
    ['garbage', 'zz'],
  ])('ignores a traceparent that is %s', (_what, tp) => {
    expect(parseTraceparent(tp)).toBeUndefined();
  });

  it('drops a tracestate that is too long or not printable ASCII, keeping the traceparent', () => {
    expect(parseTraceparent(TP, 'a=' + 'x'.repeat(600))?.traceState).toBeUndefined();
    expect(parseTraceparent(TP, 'a=\u00e9')?.traceState).toBeUndefined();
    expect(parseTraceparent(TP, 'a=\n')?.traceState).toBeUndefined();
    expect(parseTraceparent(TP, 'a=1')?.spanId).toBe(SPAN);
  });

  it('a kept trace that is not valid names no trace', () => {
    expect(decodeTrace('')).toBeUndefined();
    expect(decodeTrace('nonsense;a=1')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });
});

function invocation(trace?: string): StartedInvocation {
  return {
    id: 'inv_1',
    target: { service: 's', handler: 'h' },
    mode: 'service',
    input: '',
    headers: {},
    attempt: 1,
    journal: [],
    state: new Map(),
    now: 0,
    completions: new Map(),
    cancelRequested: false,
    seed: 'seed',
    ...(trace !== undefined ? { trace } : {}),
  };
}

describe('tracing with no tracer provider registered', () => {
  it('an untraced attempt gets no span at all; tracing: false turns everything off', () => {
    expect(Tracing.of(undefined)!.attempt(invocation(), 0)).toBeUndefined();
    expect(Tracing.of(undefined)!.ingress({ service: 's', handler: 'h' }, {})).toBeUndefined();
    expect(Tracing.of(false)).toBeUndefined();
  });

  it("a client's trace context is carried on to children, though nothing records", () => {
    const t = Tracing.of(undefined)!.attempt(invocation(TP), 0)!;
    expect(t.span.isRecording()).toBe(false);
    const child = t.child('call', { service: 'o', handler: 'x' }, 3);
    expect(decodeTrace(child)?.traceId).toBe(TRACE);
    const ingress = Tracing.of(undefined)!.ingress(
      { service: 's', handler: 'h' },
      { traceparent: TP },
    )!;
    expect(traceIdOf(ingress.kept)).toBe(TRACE);
  });
});

describe('a client trace context not trusted (clientContext: false)', () => {
  it("starts a new trace for the request, linked to the client's context", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracing = Tracing.of({ tracer: provider.getTracer('t'), clientContext: false })!;
    const t = tracing.ingress({ service: 's', handler: 'h' }, { traceparent: TP })!;
    t.end();
    const [span] = exporter.getFinishedSpans();
    expect(span!.spanContext().traceId).not.toBe(TRACE);
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.links.map((l) => l.context.spanId)).toEqual([SPAN]);
    expect(traceIdOf(t.kept)).toBe(span!.spanContext().traceId);
    // Trusted (the default): the client's span is the parent.
    const trusted = Tracing.of({ tracer: provider.getTracer('t') })!;
    trusted.ingress({ service: 's', handler: 'h' }, { traceparent: TP })!.end();
    expect(exporter.getFinishedSpans()[1]!.parentSpanContext?.spanId).toBe(SPAN);
  });
});
