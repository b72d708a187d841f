// Definitions
export { service, object, workflow, handlers } from './define/definitions.js';
export type {
  AnyDefinition,
  Definition,
  HandlerDefinitionOptions,
  HandlerMap,
  HandlerMode,
  HandlerWrapper,
  ServiceDefinition,
  ServiceKind,
  VirtualObjectDefinition,
  WorkflowDefinition,
} from './define/definitions.js';
export type { HandlerOptions, RetryPolicy, WorkflowOptions } from './define/options.js';
export { durationMs } from './define/duration.js';
export type { Duration } from './define/duration.js';
export { serde, SerdeValidationError } from './define/serde.js';
export { rpc } from './define/rpc.js';
export type { CallOptions, Opts, SendOpts, SendOptions } from './define/rpc.js';
export { DurablePromise, RestatePromise } from './context/durable-promise.js';
export type { SettledResult } from './context/durable-promise.js';
export type { Serde } from './define/serde.js';

// Contexts
export type {
  Context,
  Client,
  ContextDate,
  GenericCall,
  InvocationHandle,
  InvocationReference,
  SendClient,
  WorkflowPromise,
  ObjectContext,
  ObjectSharedContext,
  Rand,
  Request,
  RunOptions,
  WorkflowContext,
  WorkflowSharedContext,
} from './context/types.js';

// Errors
export {
  CancelledError,
  DurableError,
  ErrorCode,
  NonDeterminismError,
  PauseError,
  RetryableError,
  TerminalError,
  TimeoutError,
  ensureError,
  isNonDeterminismError,
  isPauseError,
  isRetryableError,
  isTerminalError,
  serializeError,
} from './errors.js';
export type { JournalEntryDescription, SerializedError, TerminalErrorOptions } from './errors.js';

// Journal and store interfaces (for store implementations)
export type {
  Completion,
  Effect,
  Entry,
  EntryKind,
  NewEntry,
  OutgoingInvocation,
  StateOp,
} from './journal/entry.js';
export type {
  Accepted,
  AdminStore,
  Attempt,
  AttemptListener,
  ChildInvocationRequest,
  CommitResult,
  EventFilter,
  EventWatch,
  InvocationEvent,
  StoreEvent,
  SuspendOn,
  Executor,
  IngressStore,
  InvocationInfo,
  InvocationRef,
  InvocationRequest,
  InvocationStatus,
  Outcome,
  StartedInvocation,
  Store,
  Target,
  TargetMode,
  WorkerHandle,
  WorkerOptions,
  WorkerStore,
  DeploymentRecords,
  StoreObserver,
  QueueDepth,
  EntryTimes,
  FailureDetail,
  FailureRecord,
  InvocationDetail,
  RestartOptions,
  RestartResult,
  StepRef,
} from './store.js';
export { MAX_FAILURE_MESSAGE, MAX_FAILURE_STACK } from './store/detail.js';
export type { StopSignal } from './runtime/stop-signal.js';
// The admin API's listing (for store implementations and tools)
export type {
  InvocationCounts,
  InvocationSummary,
  KeyInfo,
  KeyPage,
  KeyQueue,
  ListPage,
  ListPosition,
  ListQuery,
  PromiseInfo,
} from './store/listing.js';
export { INVOCATION_STATUSES, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from './store/listing.js';

// Running
export { serve } from './serve.js';
export { endpoint } from './endpoint.js';
export { createEndpointHandler } from './push/node-handler.js';
export type { EndpointHandlerOptions } from './push/endpoint.js';
export type { DeploymentInfo, DeploymentOptions } from './push/deployments.js';
export type { Endpoint } from './endpoint.js';
export type { LatchkeyServer, ServeOptions } from './serve.js';
export type { WebSocketOptions } from './ingress/ws.js';
// Tracing (docs/TRACING.md)
export type { TracingOption } from './telemetry/tracing.js';
export { TRACE_ATTR, TRACE_EVENT } from './telemetry/tracing.js';
// Metrics (docs/METRICS.md)
export type { MetricsOption } from './telemetry/metrics.js';

// The admin API's description of services (`GET /services`, `GET /services/{service}`)
export type { HandlerInfo, HandlerOptionsInfo, ServiceInfo } from './ingress/service-info.js';
export type { JsonSchema } from './define/json-schema.js';
export type { EventStreamOptions } from './ingress/admin-events.js';
