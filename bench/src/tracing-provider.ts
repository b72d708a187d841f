/**
 * The `api` configuration of the tracing overhead script (`tracing.ts`): an OpenTelemetry SDK
 * registered globally, spans recorded and batched, then dropped by an exporter that does nothing.
 * What is left is the SDK's own cost per span (ids, attributes, context, the batch queue), which
 * a real exporter only adds to. Loaded by `latchkey-server.ts` (LK_TRACING=api) before `serve()`.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

/** A span exporter that drops every span and reports success. */
export class DroppingExporter implements SpanExporter {
  /** Spans handed to the exporter so far (so the bench can tell spans were made at all). */
  exported = 0;

  export(spans: ReadableSpan[], resultCallback: Parameters<SpanExporter['export']>[1]): void {
    this.exported += spans.length;
    resultCallback({ code: 0 }); // ExportResultCode.SUCCESS
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Registers a `BasicTracerProvider` (a `BatchSpanProcessor` over a {@link DroppingExporter}) as
 * the global tracer provider, and an AsyncLocalStorage context manager (what
 * `NodeTracerProvider.register()` would install; without it `context.with` does nothing).
 *
 * @returns the provider (shut it down to flush) and its exporter
 */
export function registerDroppingProvider(): {
  provider: BasicTracerProvider;
  exporter: DroppingExporter;
} {
  const exporter = new DroppingExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  return { provider, exporter };
}
