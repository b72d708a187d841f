/**
 * The quickstart with OpenTelemetry tracing: registers a `NodeTracerProvider` that prints every
 * span (`ConsoleSpanExporter`) and keeps them in memory, starts a private redis-server (unless
 * REDIS_URL is set), serves a greeter and an `order` workflow, calls them over HTTP (the workflow
 * inside a client span whose context travels in a `traceparent` header), and prints at the end
 * the span tree of the workflow's trace.
 *
 *   npm run build && node examples/tracing/dist/main.js
 *
 * Latchkey needs nothing but the global provider: `serve()` takes its tracer from
 * `trace.getTracer('latchkey')` when a span starts, so registering before or after `serve()`
 * both work. `serve({ tracing: { tracer } })` passes a tracer explicitly instead.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import {
  ConsoleSpanExporter,
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { CHARGE_SPAN, ORDER_ATTRIBUTE, greeter, order } from './services.js';
import { traceSummary } from './summary.js';

// Spans go to the console as each ends, and to memory for the summary at the end. Swap
// ConsoleSpanExporter for your OTLP exporter to see them in Jaeger (see README.md).
const memory = new InMemorySpanExporter();
const provider = new NodeTracerProvider({
  spanProcessors: [
    new SimpleSpanProcessor(new ConsoleSpanExporter()),
    new SimpleSpanProcessor(memory),
  ],
});
// Global provider, W3C trace-context propagator and an AsyncLocalStorage context manager (what
// makes a span started inside a `ctx.run` closure a child of the step's span).
provider.register();

const CLIENT_SPAN = 'place order';

async function post(
  base: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as unknown;
}

/** Runs the workflow inside a client span; its context goes to the ingress as `traceparent`. */
function placeOrder(base: string, id: string): Promise<unknown> {
  return trace
    .getTracer('example')
    .startActiveSpan(CLIENT_SPAN, { kind: SpanKind.CLIENT }, async (span) => {
      try {
        const headers: Record<string, string> = {};
        propagation.inject(context.active(), headers);
        return await post(base, `/order/${id}/run`, { item: 'teapot', cents: 2500 }, headers);
      } finally {
        span.end();
      }
    });
}

async function main(): Promise<void> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
    console.log(`started a private redis-server at ${url}`);
  }
  // A fresh workflow id per run: a workflow runs once per id, even across runs on one Redis.
  const id = `order-${randomUUID().slice(0, 8)}`;
  try {
    const server = await serve({
      services: [greeter, order],
      redis: url,
      port: 0,
      handleSignals: false,
    });
    console.log(`latchkey serving on ${server.url}`);
    try {
      for (const name of ['Ada', 'Grace'])
        console.log('greeter/greet ->', await post(server.url, '/greeter/greet', { name }));
      console.log(`order/${id}/run ->`, JSON.stringify(await placeOrder(server.url, id)));
    } finally {
      // Closing drains the workers, so every span of the invocations has ended after this.
      await server.close();
    }
  } finally {
    await redis?.stop();
  }
  await provider.forceFlush();
  const summary = traceSummary(
    memory.getFinishedSpans(),
    'order/run',
    id,
    (s) =>
      s.name === CLIENT_SPAN || (s.name === CHARGE_SPAN && s.attributes[ORDER_ATTRIBUTE] === id),
  );
  console.log(summary.join('\n'));
  await provider.shutdown();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
