/**
 * One trace across a crash: a workflow's worker process is SIGKILLed inside step b; another
 * worker process takes the invocation over after the lease expires and completes it. Each worker
 * writes its finished spans to a file (test/fixtures/trace-file.mjs); the ingress runs here. The
 * spans of both processes and of the ingress form one trace: two attempt spans under the ingress
 * span, the first (recorded by the second worker: a killed process ends no span) marked lost; the
 * step that completed before the kill has its span from the first worker, b and the later steps
 * from the second.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { services } from './fixtures/crash-services.mjs';
import {
  deletePrefix,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './helpers/harness.js';
import { memoryTracing, named, one, useAsyncContext, type SpanRecord } from './helpers/tracing.js';

const redisTarget = inject('redisTarget');
useAsyncContext();
const tracing = memoryTracing();

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

function fileSpans(file: string): SpanRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as SpanRecord);
}

describe('tracing across a worker crash', () => {
  it('SIGKILL mid-step, completed by another worker: one trace, the lost attempt and the next', async () => {
    const prefix = newPrefix();
    const dir = mkdtempSync(join(tmpdir(), 'lk-trace-'));
    const file = join(dir, 'spans.jsonl');
    const workers: WorkerProcess[] = [];
    cleanup.push(async () => {
      await Promise.all(workers.map((w) => w.kill('SIGKILL').catch(() => undefined)));
      await deletePrefix(redisTarget, prefix);
      rmSync(dir, { recursive: true, force: true });
    });
    const ingress = await startServer(redisTarget, prefix, services, {
      workers: false,
      serve: { tracing: { tracer: tracing.tracer } },
    });
    cleanup.push(() => ingress.close());
    const env = { LK_SERVICES: 'crash-services.mjs', LK_TRACE_FILE: file };
    const first = await spawnWorker(redisTarget, prefix, { fault: 'in-run:b', env });
    workers.push(first);
    const sent = await post(ingress.url, '/crashflow/wf-trace/run/send', 'tr');
    expect(sent.status).toBe(202);
    const id = (sent.body as { invocationId: string }).invocationId;
    const died = await first.exited;
    expect(died.signal).toBe('SIGKILL');
    expect(first.output).toContain('FAULT in-run:b');

    const second = await spawnWorker(redisTarget, prefix, { env });
    workers.push(second);
    await until(
      'the workflow to complete on the second worker',
      async () => (await ingress.store.describe(id))?.status === 'completed',
      60_000,
    );
    const workerSpans = await until('the completing attempt span from the second worker', () => {
      const s = fileSpans(file);
      const done = named(s, 'attempt crashflow/run').filter(
        (a) => a.attributes['latchkey.attempt.outcome'] === 'completed',
      );
      return done.length === 1 ? s : undefined;
    });

    const ingressSpan = one(tracing.spans(), 'ingress crashflow/run');
    const traceId = ingressSpan.traceId;
    const spans = workerSpans.filter((s) => s.traceId === traceId);
    // Every span either worker made (this invocation is all they ran) is in the ingress's trace.
    expect(workerSpans.filter((s) => s.traceId !== traceId)).toEqual([]);
    // Two attempts: the lost one, and the second (in the always-suspend mode the second resumes
    // after its sleep: more spans, all of attempt 2).
    const attempts = named(spans, 'attempt crashflow/run');
    for (const a of attempts) {
      expect(a.parentSpanId).toBe(ingressSpan.spanId);
      expect(a.attributes['latchkey.invocation.id']).toBe(id);
    }
    const lost = one(
      attempts.filter((a) => a.attributes['latchkey.attempt.outcome'] === 'lost'),
      'attempt crashflow/run',
    );
    // The lost attempt's span was recorded by the worker that took over.
    expect(lost.attributes['latchkey.attempt']).toBe(1);
    expect(lost.pid).toBe(second.pid);
    expect(lost.status.code).toBe(SpanStatusCode.ERROR);
    // The second worker's attempts are attempt 2; the first worker's, if any ended (in the
    // always-suspend mode it suspended after step a), are attempt 1 and suspended.
    const later = attempts.filter((a) => a !== lost && a.pid === second.pid);
    expect(later.length).toBeGreaterThanOrEqual(1);
    for (const a of later) expect(a.attributes['latchkey.attempt']).toBe(2);
    for (const a of attempts.filter((x) => x.pid === first.pid)) {
      expect(a.attributes['latchkey.attempt']).toBe(1);
      expect(a.attributes['latchkey.attempt.outcome']).toBe('suspended');
    }
    expect(
      later.filter((a) => a.attributes['latchkey.attempt.outcome'] === 'completed'),
    ).toHaveLength(1);
    // Step a finished before the kill: its span came from the first worker.
    const runA = one(spans, 'run a');
    expect(runA.pid).toBe(first.pid);
    // b was cut short by the kill: it ran again, and only that run ended (on the second worker).
    const runB = one(spans, 'run b');
    expect(runB.pid).toBe(second.pid);
    expect(later.map((a) => a.spanId)).toContain(runB.parentSpanId);
    expect(one(spans, 'invocation crashflow/run').attributes['latchkey.invocation.result']).toBe(
      'success',
    );
  });
});
