/**
 * `@latchkey/core/protocol`: the WebSocket protocol's frame types (docs/PROTOCOL.md), shared by the
 * server and `@latchkey/client`, the error codes and error body they carry, and the protocol's few
 * constants. Loads nothing else of the runtime.
 *
 * @packageDocumentation
 */
export { MAX_REQUEST_ID, NOT_READY_CODE, SUBPROTOCOL } from './ingress/frames.js';
export type {
  AcceptedFrame,
  AttachFrame,
  CallFields,
  CallFrame,
  CancelFrame,
  ClientFrame,
  ClientFrameType,
  Delay,
  ErrorFrame,
  EventFrame,
  InvocationRef,
  OkFrame,
  OutputFrame,
  PingFrame,
  PongFrame,
  ProgressEvent,
  RejectAwakeableFrame,
  ResolveAwakeableFrame,
  ResultFrame,
  SendFrame,
  ServerFrame,
  ServerFrameType,
  SubmitFrame,
  SubscribeFrame,
  SubscribedFrame,
  UnsubscribeFrame,
  UnsubscribedFrame,
} from './ingress/frames.js';
export type { ErrorBody, ErrorCode } from './errors.js';
