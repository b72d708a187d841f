/**
 * Tracing (docs/TRACING.md) with an OpenTelemetry SDK 2.x provider and an in-memory exporter: the
 * span tree of a 3-step workflow (a handler's own span nested under its step), a call chain across
 * three services and a send in one trace, a client's `traceparent` honoured over HTTP and over the
 * WebSocket (and a malformed one ignored), the trace id in the admin API's detail. Each holds in
 * both inactivity modes: in "always suspend" a workflow takes one attempt per step, so the tests
 * count spans across attempts.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { z } from 'zod';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  TerminalError,
  handlers,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
} from '@latchkey/core';
import { deletePrefix, get, newPrefix, post, startServer, until } from './helpers/harness.js';
import { FrameSocket } from './helpers/frames.js';
import {
  childrenOf,
  memoryTracing,
  named,
  one,
  useAsyncContext,
  type SpanRecord,
} from './helpers/tracing.js';

const redisTarget = inject('redisTarget');
useAsyncContext();
const tracing = memoryTracing();

const flow = workflow({
  name: 'tflow',
  handlers: {
    run: async (ctx, input: string) => {
      const a = await ctx.run('s1', () => `${input}-1`);
      const b = await ctx.run('s2', () =>
        tracing.userTracer.startActiveSpan('user-work', (span) => {
          span.end();
          return `${a}-2`;
        }),
      );
      await ctx.sleep({ milliseconds: 20 });
      return ctx.run('s3', () => `${b}-3`);
    },
  },
});

const chainC = service({
  name: 'chainC',
  handlers: {
    go: handlers.handler({ input: z.number() }, async (_ctx, n: number) => n + 1),
    boom: async () => {
      throw new TerminalError('no such thing', { errorCode: 409 });
    },
  },
});
const chainB = service({
  name: 'chainB',
  handlers: {
    go: async (ctx: Context, n: number) => (await ctx.serviceClient(chainC).go(n)) * 10,
  },
});
const chainA = service({
  name: 'chainA',
  handlers: {
    go: async (ctx: Context, n: number) => ctx.serviceClient(chainB).go(n + 1),
    fire: async (ctx: Context, n: number) => {
      ctx.serviceSendClient(chainC).go(n);
      return 'sent';
    },
  },
});

let server: LatchkeyServer;
let prefix: string;

beforeAll(async () => {
  prefix = newPrefix();
  server = await startServer(redisTarget, prefix, [flow, chainA, chainB, chainC], {
    serve: { tracing: { tracer: tracing.tracer }, admin: { port: 0 } },
  });
});

afterAll(async () => {
  await server?.close();
  await deletePrefix(redisTarget, prefix);
});

beforeEach(() => tracing.exporter.reset());

/** Waits until the spans of the invocation of `target` ended with its `invocation` span. */
async function spansUntilDone(target: string, count = 1): Promise<SpanRecord[]> {
  return until(`${count} '${target}' invocation span(s)`, () => {
    const spans = tracing.spans();
    return named(spans, `invocation ${target}`).length >= count ? spans : undefined;
  });
}

function inOneTrace(spans: SpanRecord[], traceId: string): SpanRecord[] {
  return spans.filter((s) => s.traceId === traceId);
}

describe('spans of an invocation', () => {
  it('a 3-step workflow: ingress → attempts → one run span per step; a user span nests in its step', async () => {
    const res = await post(server.url, '/tflow/w1/run', 'x');
    expect(res.status).toBe(200);
    expect(res.body).toBe('x-1-2-3');
    const all = await spansUntilDone('tflow/run');
    const ingress = one(all, 'ingress tflow/run');
    expect(ingress.kind).toBe(SpanKind.SERVER);
    const spans = inOneTrace(all, ingress.traceId);
    // Every span of the workflow is in the ingress request's trace.
    const attempts = named(spans, 'attempt tflow/run');
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    for (const a of attempts) {
      expect(a.parentSpanId).toBe(ingress.spanId);
      expect(a.kind).toBe(SpanKind.CONSUMER);
      expect(a.attributes['latchkey.invocation.id']).toMatch(/^inv_/);
      expect(a.attributes['latchkey.invocation.key']).toBe('w1');
      expect(a.attributes['rpc.service']).toBe('tflow');
    }
    // No attempt failed: each is attempt 1 (a resumption after a suspension is no retry).
    for (const a of attempts) expect(a.attributes['latchkey.attempt']).toBe(1);
    // Each step ran once, in a span under one of the attempts; replays make no new span.
    const attemptIds = new Set(attempts.map((a) => a.spanId));
    for (const [i, name] of ['s1', 's2', 's3'].entries()) {
      const run = one(spans, `run ${name}`);
      expect(attemptIds.has(run.parentSpanId!)).toBe(true);
      expect(run.attributes['latchkey.run.name']).toBe(name);
      expect(run.attributes['latchkey.journal.index']).toBe(i === 2 ? 3 : i);
    }
    expect(childrenOf(spans, one(spans, 'run s2')).map((s) => s.name)).toEqual(['user-work']);
    // The timer is an event with its due time on the attempt that journaled it.
    const timers = attempts.flatMap((a) =>
      a.events.filter((e) => e.attributes?.['latchkey.journal.entry.type'] === 'sleep'),
    );
    expect(timers).toHaveLength(1);
    expect(Date.parse(String(timers[0]!.attributes!['latchkey.timer.due']))).toBeGreaterThan(0);
    // The invocation's span: accept to completion, in the same trace, with its result.
    const inv = one(spans, 'invocation tflow/run');
    expect(inv.parentSpanId).toBe(ingress.spanId);
    expect(inv.attributes['latchkey.invocation.result']).toBe('success');
    const completed = attempts.filter(
      (a) => a.attributes['latchkey.attempt.outcome'] === 'completed',
    );
    expect(completed).toHaveLength(1);
    const last = completed[0]!;
    // An earlier attempt (always-suspend mode) ended suspended, marked by an event, not an error.
    for (const a of attempts.filter((x) => x !== last)) {
      expect(a.attributes['latchkey.attempt.outcome']).toBe('suspended');
      expect(a.events.some((e) => e.name === 'latchkey.suspended')).toBe(true);
      expect(a.status.code).not.toBe(SpanStatusCode.ERROR);
    }
  });

  it('a call chain across three services is one trace: call spans parent the children', async () => {
    const res = await post(server.url, '/chainA/go', 1);
    expect(res.body).toBe(30);
    // Each link's attempt and invocation spans end after its outcome went out: wait for all of
    // them (the caller's result may arrive before its callee's spans end).
    const all = await until('the attempt and invocation spans of the whole chain', () => {
      const spans = tracing.spans();
      const ended = ['chainA/go', 'chainB/go', 'chainC/go'].every(
        (t) =>
          named(spans, `attempt ${t}`).length > 0 && named(spans, `invocation ${t}`).length > 0,
      );
      return ended ? spans : undefined;
    });
    const ingress = one(all, 'ingress chainA/go');
    const spans = inOneTrace(tracing.spans(), ingress.traceId);
    const attemptA = named(spans, 'attempt chainA/go');
    const callB = one(spans, 'call chainB/go');
    expect(callB.kind).toBe(SpanKind.PRODUCER);
    expect(attemptA.map((a) => a.spanId)).toContain(callB.parentSpanId);
    const attemptB = named(spans, 'attempt chainB/go');
    expect(attemptB.length).toBeGreaterThanOrEqual(1);
    for (const b of attemptB) expect(b.parentSpanId).toBe(callB.spanId);
    const callC = one(spans, 'call chainC/go');
    expect(attemptB.map((b) => b.spanId)).toContain(callC.parentSpanId);
    const attemptC = one(spans, 'attempt chainC/go');
    expect(attemptC.parentSpanId).toBe(callC.spanId);
    expect(one(spans, 'invocation chainC/go').parentSpanId).toBe(callC.spanId);
    expect(one(spans, 'invocation chainB/go').parentSpanId).toBe(callB.spanId);
  });

  it("a send's child runs in the sender's trace, under the send span", async () => {
    const res = await post(server.url, '/chainA/fire', 5);
    expect(res.body).toBe('sent');
    const all = await spansUntilDone('chainC/go');
    const ingress = one(all, 'ingress chainA/fire');
    const spans = inOneTrace(all, ingress.traceId);
    const send = one(spans, 'send chainC/go');
    expect(one(spans, 'attempt chainC/go').parentSpanId).toBe(send.spanId);
  });

  it('a failed invocation: its attempt and invocation spans say failure, with the error', async () => {
    const res = await post(server.url, '/chainC/boom', null);
    expect(res.status).toBe(409);
    const spans = await spansUntilDone('chainC/boom');
    const inv = one(spans, 'invocation chainC/boom');
    expect(inv.attributes['latchkey.invocation.result']).toBe('failure');
    expect(inv.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no such thing' });
    expect(inv.attributes['error.type']).toBe('TerminalError');
    expect(inv.attributes['latchkey.error.code']).toEqual(expect.any(String));
    const attempt = one(spans, 'attempt chainC/boom');
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(one(spans, 'ingress chainC/boom').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a request refused at the ingress starts no invocation and no attempt span', async () => {
    const res = await post(server.url, '/chainC/go', 'not a number');
    expect(res.status).toBe(400);
    // The next request's spans arrive after anything the refused one could have made.
    await post(server.url, '/chainC/go', 1);
    await spansUntilDone('chainC/go');
    expect(named(tracing.spans(), 'attempt chainC/go')).toHaveLength(1);
  });
});

describe('trace context from clients', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';

  it('HTTP traceparent and tracestate: the request joins the caller trace; the admin detail names it', async () => {
    const res = await post(server.url, '/chainA/go', 2, {
      traceparent: `00-${traceId}-${parentId}-01`,
      tracestate: 'vendor=abc',
    });
    expect(res.body).toBe(40);
    const all = await spansUntilDone('chainA/go');
    const ingress = one(all, 'ingress chainA/go');
    expect(ingress.traceId).toBe(traceId);
    expect(ingress.parentSpanId).toBe(parentId);
    const spans = inOneTrace(tracing.spans(), traceId);
    expect(named(spans, 'attempt chainC/go').length).toBe(1);
    const id = String(ingress.attributes['latchkey.invocation.id']);
    const detail = await get(server.adminUrl!, `/invocations/${id}`);
    expect((detail.body as { traceId?: string }).traceId).toBe(traceId);
  });

  it('a malformed traceparent is ignored: a new trace, and the request succeeds', async () => {
    for (const bad of [
      '00-zz-00f067aa0ba902b7-01',
      `00-${'0'.repeat(32)}-${parentId}-01`,
      'x'.repeat(300),
    ]) {
      tracing.exporter.reset();
      const res = await post(server.url, '/chainC/go', 1, { traceparent: bad });
      expect(res.status).toBe(200);
      const all = await spansUntilDone('chainC/go');
      const ingress = one(all, 'ingress chainC/go');
      expect(ingress.parentSpanId).toBeUndefined();
      expect(ingress.traceId).not.toBe(traceId);
    }
  });

  it('WebSocket call frame headers carry traceparent', async () => {
    const ws = await FrameSocket.open(server.url);
    try {
      ws.ws.send(
        JSON.stringify({
          id: 'c1',
          type: 'call',
          service: 'chainC',
          handler: 'go',
          input: 7,
          headers: { traceparent: `00-${traceId}-${parentId}-01` },
        }),
      );
      const done = await ws.next(
        'the call result',
        (f) => f['id'] === 'c1' && f['type'] === 'result',
      );
      expect(done['value']).toBe(8);
    } finally {
      ws.ws.close();
    }
    const all = await spansUntilDone('chainC/go');
    const ingress = one(all, 'ingress chainC/go');
    expect(ingress.traceId).toBe(traceId);
    expect(ingress.parentSpanId).toBe(parentId);
    expect(one(all, 'attempt chainC/go').parentSpanId).toBe(ingress.spanId);
  });
});
