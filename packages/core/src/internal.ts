// Internals for sibling packages and tests; not a stable API.
export { JournalRunner } from './runtime/journal-runner.js';
export { createExecutor } from './runtime/invoker.js';
export type { ExecutorOptions } from './runtime/invoker.js';
export { Registry } from './runtime/registry.js';
export { Stopper } from './runtime/stop-signal.js';
export { nextRetry, DEFAULT_RETRY } from './runtime/retry.js';
export { matchEntry, stateOpsOf } from './journal/entry.js';
export { createIngress, parseDelay, checkKey, IngressError } from './ingress/http.js';
export { resolveHandlers } from './define/definitions.js';
export type { HandlerSpec } from './define/definitions.js';
export { HandlerContext, awakeableId, parseAwakeableId } from './context/context.js';
