/**
 * The trace summary the example prints at the end: the spans of the traces that touch one
 * workflow, as a tree by parent, one line per span. Made for people and for the example's test
 * (test/example-tracing.redis.test.ts parses it), so its shape is fixed:
 *
 * ```text
 * === trace summary: order/run, workflow id order-1a2b3c4d ===
 * trace 5b8efff798038103d269b633813fc60c: 8 spans
 * - place order [client]
 *   - ingress order/run [server]
 *     - attempt order/run [consumer] latchkey.attempt=1
 *       - run reserve stock [internal]
 *       - run charge card [internal]
 *         - payments.charge [internal]
 *       - run ship [internal]
 *     - invocation order/run [internal] latchkey.invocation.result=success
 * === end of trace summary ===
 * ```
 *
 * Two spaces of indent per level; a line is `- <name> [<kind>]` and then the attributes worth
 * reading. A span whose parent was not exported is a root, marked `(parent not exported)`.
 */
import { SpanKind, type AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';

/** The attributes shown after a span's name, when it has them. */
const SHOWN = ['latchkey.attempt', 'latchkey.invocation.result'];

const KIND: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const startNs = (s: ReadableSpan): bigint =>
  BigInt(s.startTime[0]) * 1_000_000_000n + BigInt(s.startTime[1]);

function line(s: ReadableSpan, depth: number, orphan: boolean): string {
  const attrs = SHOWN.flatMap((k) => {
    const v: AttributeValue | undefined = s.attributes[k];
    return v === undefined ? [] : [`${k}=${String(v)}`];
  });
  return [
    `${'  '.repeat(depth)}- ${s.name} [${KIND[s.kind]}]`,
    ...attrs,
    ...(orphan ? ['(parent not exported)'] : []),
  ].join(' ');
}

/** One trace as tree lines, children in the order they started (`spans` sorted by start). */
function treeOf(spans: ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string | undefined, ReadableSpan[]>();
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    children.set(key, [...(children.get(key) ?? []), s]);
  }
  const out: string[] = [];
  const walk = (s: ReadableSpan, depth: number): void => {
    out.push(line(s, depth, depth === 0 && s.parentSpanContext !== undefined));
    for (const c of children.get(s.spanContext().spanId) ?? []) walk(c, depth + 1);
  };
  for (const root of children.get(undefined) ?? []) walk(root, 0);
  return out;
}

/**
 * The summary of the traces that touch a workflow run: every trace holding one of `anchors`
 * (spans the caller knows belong to the run, e.g. its own client span and the user span) or a
 * span named `<anything> <target>` (Latchkey's `ingress`, `attempt`, `invocation`... spans of
 * the run's target), each printed whole.
 *
 * @param spans - every finished span (e.g. an `InMemorySpanExporter`'s)
 * @param target - the workflow's target, `Service/handler`
 * @param workflowId - the run's workflow id, for the heading
 * @param anchors - spans known to belong to the run
 * @returns the summary's lines, heading and closing line included
 */
export function traceSummary(
  spans: ReadableSpan[],
  target: string,
  workflowId: string,
  anchors: (s: ReadableSpan) => boolean,
): string[] {
  const byStart = [...spans].sort((a, b) => (startNs(a) < startNs(b) ? -1 : 1));
  const traceIds = new Set(
    byStart
      .filter((s) => anchors(s) || s.name.endsWith(` ${target}`))
      .map((s) => s.spanContext().traceId),
  );
  const out = [`=== trace summary: ${target}, workflow id ${workflowId} ===`];
  for (const traceId of traceIds) {
    const inTrace = byStart.filter((s) => s.spanContext().traceId === traceId);
    out.push(`trace ${traceId}: ${inTrace.length} spans`, ...treeOf(inTrace));
  }
  out.push('=== end of trace summary ===');
  return out;
}
