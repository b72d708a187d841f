/**
 * What tracing and metrics add to one invocation, measured in-process without Redis or HTTP, where
 * a shared machine's noise (tens of % between windows of the end-to-end bench) cannot hide a 2 %
 * difference: the tracing and metrics calls Latchkey makes for one invocation, repeated, CPU time
 * per invocation. Compare with the Latchkey process's CPU per invocation that `run.js` and
 * `tracing.js` print (about 90 µs for a no-op call at c=64, 250 µs for a 3-step workflow).
 *
 *   node bench/dist/telemetry-cost.js [--invocations 200000]
 */
import { parseArgs } from 'node:util';
import { trace } from '@opentelemetry/api';
import { Metrics, Tracing } from '@latchkey/core/internal';
import type { StartedInvocation } from '@latchkey/core';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DroppingExporter } from './tracing-provider.js';

const { values } = parseArgs({ options: { invocations: { type: 'string', default: '200000' } } });
const N = Number(values.invocations);

const target = { service: 'threeSteps', handler: 'run', key: 'k' };
const headers = { 'content-type': 'application/json' };
function invocation(kept: string | undefined): StartedInvocation {
  return {
    id: 'inv_0a1234567890',
    target,
    mode: 'workflow',
    input: '',
    headers,
    attempt: 1,
    journal: [],
    state: new Map(),
    now: 0,
    completions: new Map(),
    cancelRequested: false,
    seed: 's',
    ...(kept !== undefined ? { trace: kept } : {}),
  };
}

/** The tracing calls of one invocation: its ingress span, one attempt, `steps` run spans. */
function traced(t: Tracing, steps: number): void {
  const ingress = t.ingress(target, headers);
  const attempt = t.attempt(invocation(ingress?.kept), 0);
  for (let i = 0; i < steps; i++) attempt?.run(`step ${i}`, i)?.end();
  attempt?.completed({ ok: true, value: '1' });
  attempt?.end(false, false);
  ingress?.end();
}

/** The metrics calls of one invocation: request, accept, attempt, end, scripts (accept, complete + one per step). */
function metered(m: Metrics, steps: number): void {
  m.request('http', 'accepted');
  m.accepted('threeSteps', 'run');
  for (let i = 0; i < steps + 2; i++) m.script('commitEntries', 0.0002);
  m.queueWait('threeSteps', 'run', 0.001);
  m.attempt('threeSteps', 'run', 'completed', 0.002);
  m.ended('threeSteps', 'run', 'completed');
  m.invocation('threeSteps', 'run', true, 0.003);
}

/** CPU µs per call of `fn`, the best of 5 runs of N calls (after a warm-up run). */
function cost(fn: () => void): number {
  let best = Infinity;
  for (let run = 0; run < 6; run++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) fn();
    const d = process.cpuUsage(t0);
    if (run > 0) best = Math.min(best, (d.user + d.system) / N);
  }
  return best;
}

const rows: [string, number, number][] = [];
const noProvider = Tracing.of(undefined)!;
rows.push([
  'tracing, no provider (default)',
  cost(() => traced(noProvider, 0)),
  cost(() => traced(noProvider, 3)),
]);
const metrics = Metrics.of({ defaultMetrics: false }, true)!;
rows.push(['metrics on', cost(() => metered(metrics, 0)), cost(() => metered(metrics, 3))]);
const exporter = new DroppingExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
const sdk = Tracing.of(undefined)!;
rows.push([
  'tracing, SDK provider, spans dropped',
  cost(() => traced(sdk, 0)),
  cost(() => traced(sdk, 3)),
]);
await provider.shutdown();

console.log(`CPU per invocation of the telemetry calls alone (best of 5 × ${N}), µs:`);
console.log('what                                   no-op call   3-step workflow');
for (const [what, a, b] of rows)
  console.log(`${what.padEnd(38)} ${a.toFixed(3).padStart(10)}   ${b.toFixed(3).padStart(15)}`);
console.log(`(c) exported ${exporter.exported} spans`);
