/**
 * W3C trace context (`traceparent`, `tracestate`) as Latchkey reads it from clients and keeps it
 * with an invocation. Parsed here rather than through a registered propagator, so propagation
 * works whatever the application set up (and with no OpenTelemetry SDK at all).
 */
import { createTraceState, isSpanContextValid, type SpanContext } from '@opentelemetry/api';

/** `version-traceid-parentid-flags`, lower-case hex; a later version may append fields. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?$/;

/** The longest `tracestate` kept (W3C: at most 32 members; 512 characters is what it asks to propagate). */
export const MAX_TRACESTATE_LENGTH = 512;

/** The longest `traceparent` looked at (version 00 is 55 characters). */
const MAX_TRACEPARENT_LENGTH = 256;

/** Printable ASCII only: anything else makes the `tracestate` invalid as a whole. */
const TRACESTATE = /^[ -~]*$/;

/**
 * The span context a `traceparent` (and optional `tracestate`) names, or undefined when it is
 * missing or invalid (W3C: an invalid header is ignored, and the request starts a new trace). A
 * `tracestate` that is too long or not printable ASCII is dropped, the `traceparent` kept.
 */
export function parseTraceparent(
  traceparent: unknown,
  tracestate?: unknown,
): SpanContext | undefined {
  if (typeof traceparent !== 'string' || traceparent.length > MAX_TRACEPARENT_LENGTH) return;
  const m = TRACEPARENT.exec(traceparent.trim());
  // Version ff is forbidden; version 00 has exactly four fields.
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return;
  const sc: SpanContext = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16) & 0xff,
    isRemote: true,
  };
  if (!isSpanContextValid(sc)) return;
  if (
    typeof tracestate === 'string' &&
    tracestate !== '' &&
    tracestate.length <= MAX_TRACESTATE_LENGTH &&
    TRACESTATE.test(tracestate)
  ) {
    sc.traceState = createTraceState(tracestate);
  }
  return sc;
}

/** A span context as a version-00 `traceparent`. */
export function formatTraceparent(sc: SpanContext): string {
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${sc.traceId}-${sc.spanId}-${flags}`;
}

/**
 * A span context in the form an invocation keeps it (`InvocationRequest.trace`): the
 * `traceparent`, then `;` and the `tracestate` when there is one.
 */
export function encodeTrace(sc: SpanContext): string {
  const ts = sc.traceState?.serialize();
  return ts ? `${formatTraceparent(sc)};${ts}` : formatTraceparent(sc);
}

/** The span context of a kept trace (see {@link encodeTrace}); undefined when none or invalid. */
export function decodeTrace(kept: string | undefined): SpanContext | undefined {
  if (!kept) return undefined;
  const i = kept.indexOf(';');
  return i < 0 ? parseTraceparent(kept) : parseTraceparent(kept.slice(0, i), kept.slice(i + 1));
}

/** The trace id of a kept trace, for operators (the admin API's detail); undefined when none. */
export function traceIdOf(kept: string | undefined): string | undefined {
  return decodeTrace(kept)?.traceId;
}
