// Internals for sibling packages and tests; not a stable API.
export { JournalRunner } from './runtime/journal-runner.js';
export type { Timers } from './runtime/journal-runner.js';
export { Replayer } from './journal/replayer.js';
export type * from './journal/replay-types.js';
export { createExecutor } from './runtime/invoker.js';
export type { ExecutorOptions } from './runtime/invoker.js';
export { Registry } from './runtime/registry.js';
export { Stopper } from './runtime/stop-signal.js';
export { nextRetry, DEFAULT_RETRY } from './runtime/retry.js';
export { isStateKind, matchEntry, stateOpsOf } from './journal/entry.js';
export { createIngress } from './ingress/http.js';
export { IngressError } from './errors.js';
export { checkKey, ingressRules, jsonTooDeep, parseDelay } from './ingress/input.js';
export { resolveHandlers } from './define/definitions.js';
export type { HandlerSpec } from './define/definitions.js';
export { HandlerContext } from './context/context.js';
export { awakeableId, cancelToken, deriveSecret, parseAwakeableId } from './context/secrets.js';
export { MAX_TIMER_MS, timerMs } from './define/duration.js';
export {
  childInvocationId,
  fnv1a,
  newInvocationId,
  partitionFor,
  partitionOf,
} from './store/ids.js';
export {
  decodeKeyCursor,
  decodeListCursor,
  encodeKeyCursor,
  encodeListCursor,
  listSortField,
  matchesQuery,
  positionBefore,
} from './store/listing.js';
export { noteStepMs, stepMsOf } from './journal/entry-meta.js';
export { prefixProblem } from './store/detail.js';
export { detailView, preview, timeline } from './ingress/admin-view.js';
export {
  traceIdOf,
  parseTraceparent,
  encodeTrace,
  decodeTrace,
} from './telemetry/trace-context.js';
export { Tracing } from './telemetry/tracing.js';
export { Metrics } from './telemetry/metrics.js';
