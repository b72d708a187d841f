/**
 * The WebSocket protocol's frames (docs/PROTOCOL.md), defined once: what a client sends
 * ({@link ClientFrame}) and what the server answers ({@link ServerFrame}), each a union
 * discriminated by `type`. The server (`ws.ts`) builds its answers as these types and decodes
 * untrusted requests into them (`ws-decode.ts`); `@latchkey/client` builds its requests and reads
 * the answers with them, through `@latchkey/core/protocol`.
 */
import type { ErrorBody, ErrorCode } from '../errors.js';
import type { InvocationStatus } from '../store.js';

export type { ErrorBody, ErrorCode };

/** The subprotocol a client offers (accepted, not required). */
export const SUBPROTOCOL = 'latchkey.v1';
/** Longest request `id` (characters). */
export const MAX_REQUEST_ID = 128;
/** The `code` of the `error` answering an `output` request while the invocation runs. */
export const NOT_READY_CODE = 470;

// ---------------------------------------------------------------- client → server

/** Names an invocation (attach, output, subscribe). */
export type InvocationRef =
  | { invocationId: string }
  | { workflow: string; key: string }
  | { service: string; handler: string; idempotencyKey: string; key?: string };

/** Fields of a `call`: a handler, its input and the request's options. */
export interface CallFields {
  service: string;
  handler: string;
  /** The object's or workflow's key (none for a service). */
  key?: string;
  /** The input: JSON, or base64 bytes for a handler whose input serde is not JSON. */
  input?: unknown;
  idempotencyKey?: string;
  /** At most 64 string values; credentials are dropped. */
  headers?: Record<string, string>;
}

/** When to start a send or a submission: ms, `10s`-style or ISO 8601 (`PT10S`). */
export type Delay = number | string;

export type PingFrame = { id: string; type: 'ping' };
export type CallFrame = { id: string; type: 'call' } & CallFields;
export type SendFrame = { id: string; type: 'send'; delay?: Delay } & CallFields;
export type SubmitFrame = {
  id: string;
  type: 'submit';
  workflow: string;
  key: string;
  input?: unknown;
  idempotencyKey?: string;
  headers?: Record<string, string>;
  delay?: Delay;
};
export type AttachFrame = { id: string; type: 'attach' } & InvocationRef;
export type OutputFrame = { id: string; type: 'output' } & InvocationRef;
export type SubscribeFrame = { id: string; type: 'subscribe' } & InvocationRef;
/** `subscription`: the `id` of the `subscribe`. */
export type UnsubscribeFrame = { id: string; type: 'unsubscribe'; subscription: string };
export type ResolveAwakeableFrame = {
  id: string;
  type: 'resolveAwakeable';
  awakeableId: string;
  value?: unknown;
};
export type RejectAwakeableFrame = {
  id: string;
  type: 'rejectAwakeable';
  awakeableId: string;
  reason?: string;
};
/** `token`: the `cancelToken` of the `accepted` that started the invocation. */
export type CancelFrame = { id: string; type: 'cancel'; invocationId: string; token?: string };

/** A request (client → server). */
export type ClientFrame =
  | PingFrame
  | CallFrame
  | SendFrame
  | SubmitFrame
  | AttachFrame
  | OutputFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | ResolveAwakeableFrame
  | RejectAwakeableFrame
  | CancelFrame;

/** A request's `type`. */
export type ClientFrameType = ClientFrame['type'];

// ---------------------------------------------------------------- server → client

/** A subscription event: a status change, or a journal entry (kind and name only). */
export type ProgressEvent =
  | { kind: 'status'; status: InvocationStatus }
  | { kind: 'journal'; index: number; entry: { k: string; n?: string } };

export type PongFrame = { id: string; type: 'pong' };
/** `cancelToken` only when this request created the invocation. */
export type AcceptedFrame = {
  id: string;
  type: 'accepted';
  invocationId: string;
  status: 'Accepted' | 'PreviouslyAccepted';
  cancelToken?: string;
};
/**
 * An invocation's result: its JSON `value` (absent for none), or its bytes in base64 marked
 * `encoding: 'base64'` (an output serde that is not JSON); or its failure.
 */
export type ResultFrame = { id: string; type: 'result'; invocationId: string } & (
  { ok: true; value?: unknown; encoding?: 'base64' } | { ok: false; error: ErrorBody }
);
export type SubscribedFrame = { id: string; type: 'subscribed'; invocationId: string };
export type EventFrame = { id: string; type: 'event'; invocationId: string; event: ProgressEvent };
export type UnsubscribedFrame = { id: string; type: 'unsubscribed' };
export type OkFrame = { id: string; type: 'ok' };
/** A refused request: `id` absent when the frame had none or was not JSON. */
export type ErrorFrame = { id?: string; type: 'error' } & ErrorBody;

/** An answer or event (server → client). */
export type ServerFrame =
  | PongFrame
  | AcceptedFrame
  | ResultFrame
  | SubscribedFrame
  | EventFrame
  | UnsubscribedFrame
  | OkFrame
  | ErrorFrame;

/** An answer's `type`. */
export type ServerFrameType = ServerFrame['type'];
