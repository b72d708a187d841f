/**
 * OpenTelemetry SDK 2.x in the test process: a tracer provider whose spans are kept in memory
 * (`InMemorySpanExporter`), the async-hooks context manager (so a handler's own spans nest), and
 * views of finished spans that tests assert on: by name, by parent, as a tree of names.
 */
import { context, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

/** A finished span as tests look at it (also the form worker processes write: trace-file.mjs). */
export interface SpanRecord {
  pid?: number;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string | undefined;
  attributes: Record<string, unknown>;
  events: { name: string; attributes?: Record<string, unknown> | undefined }[];
  status: { code: number; message?: string | undefined };
}

export function recordOf(s: ReadableSpan): SpanRecord {
  return {
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    attributes: { ...s.attributes },
    events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: { ...s.status },
  };
}

/** A provider with an in-memory exporter, and the tracer to hand to `serve({ tracing })`. */
export function memoryTracing(): {
  exporter: InMemorySpanExporter;
  tracer: Tracer;
  /** A tracer of the same provider for handlers' own spans. */
  userTracer: Tracer;
  spans(): SpanRecord[];
} {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return {
    exporter,
    tracer: provider.getTracer('latchkey-test'),
    userTracer: provider.getTracer('user-code'),
    spans: () => exporter.getFinishedSpans().map(recordOf),
  };
}

let contextManager: AsyncLocalStorageContextManager | undefined;

/** Registers the async-hooks context manager once per test file (handlers' spans then nest). */
export function useAsyncContext(): void {
  if (contextManager) return;
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
}

/** The spans named `name`. */
export function named(spans: SpanRecord[], name: string): SpanRecord[] {
  return spans.filter((s) => s.name === name);
}

/** The one span named `name` (fails unless there is exactly one). */
export function one(spans: SpanRecord[], name: string): SpanRecord {
  const found = named(spans, name);
  if (found.length !== 1) {
    const names = spans.map((s) => s.name).join(', ');
    throw new Error(`expected one span '${name}', found ${found.length} among: ${names}`);
  }
  return found[0]!;
}

/** The children of a span. */
export function childrenOf(spans: SpanRecord[], parent: SpanRecord): SpanRecord[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
}
