/**
 * Decoding untrusted WebSocket requests into the protocol's typed frames (`frames.ts`): every
 * field is checked before anything reaches the ingress core, in the order the answers document
 * (docs/PROTOCOL.md). A frame that fails a check changes nothing.
 */
import type { Serde } from '../define/serde.js';
import { ErrorCode, IngressError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import type { InvocationRequest } from '../store.js';
import { buildRequest, findHandler } from './common.js';
import { frameHeaders, parseFrame, type Rules } from './input.js';
import {
  MAX_REQUEST_ID,
  type CancelFrame,
  type InvocationRef,
  type RejectAwakeableFrame,
  type ResolveAwakeableFrame,
  type UnsubscribeFrame,
} from './frames.js';

/** A parsed frame as it arrived: a JSON object, nothing of it checked yet but its `id`. */
export type RawFrame = Record<string, unknown> & { id: string };

const invalid = (message: string): IngressError =>
  new IngressError(400, ErrorCode.INVALID_FRAME, message);

/**
 * Parses a text frame and checks its envelope: a JSON object with an `id` of 1 to
 * {@link MAX_REQUEST_ID} characters (the answer to a frame without one carries no `id`).
 */
export function decodeEnvelope(text: string, maxJsonDepth: number): RawFrame {
  const f = parseFrame(text, maxJsonDepth);
  if (typeof f !== 'object' || f === null || Array.isArray(f)) {
    throw invalid('a frame must be a JSON object');
  }
  const id = (f as Record<string, unknown>)['id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REQUEST_ID) {
    throw invalid(`every request needs an id: a string of 1 to ${MAX_REQUEST_ID} characters`);
  }
  return f as RawFrame;
}

/** A `call`, `send` or `submit` decoded: the store's request and the handler's output serde. */
export interface DecodedInvoke {
  send: boolean;
  request: InvocationRequest;
  output: Serde<unknown> | undefined;
}

/**
 * Decodes a `call`, `send` or `submit` (a `submit` is a send to a workflow's `run`): the handler
 * (404 unless public; its key), the delay, the idempotency key, the headers, the input.
 */
export function decodeInvoke(f: RawFrame, registry: Registry, rules: Rules): DecodedInvoke {
  const isSubmit = f['type'] === 'submit';
  const { spec, key } = isSubmit
    ? findHandler(registry, f['workflow'], 'run', f['key'])
    : findHandler(registry, f['service'], f['handler'], f['key']);
  if (isSubmit && spec.mode !== 'workflow') throw invalid(`'${spec.service}' is not a workflow`);
  const send = f['type'] !== 'call';
  const delay = f['delay'];
  if (delay !== undefined && typeof delay !== 'number' && typeof delay !== 'string') {
    throw new IngressError(400, ErrorCode.INVALID_DELAY, 'delay must be a number or a string');
  }
  const idem = f['idempotencyKey'];
  if (idem !== undefined && typeof idem !== 'string') {
    const message = 'idempotencyKey must be a string';
    throw new IngressError(400, ErrorCode.INVALID_IDEMPOTENCY_KEY, message);
  }
  const headers = f['headers'];
  const request = buildRequest(spec, key, { json: f['input'] }, rules, {
    send,
    ...(delay !== undefined ? { delay } : {}),
    ...(idem !== undefined ? { idempotencyKey: idem } : {}),
    ...(headers !== undefined ? { headers: frameHeaders(headers, rules) } : {}),
  });
  return { send, request, output: spec.output };
}

/**
 * The invocation an `attach`, `output` or `subscribe` names: `invocationId`, `workflow` + `key`,
 * or `service` + `handler` + `idempotencyKey` (+ `key`).
 */
export function decodeRef(f: RawFrame): InvocationRef {
  const str = (k: string): string | undefined => (typeof f[k] === 'string' ? f[k] : undefined);
  const invocationId = str('invocationId');
  if (invocationId) return { invocationId };
  const workflow = str('workflow');
  const key = str('key');
  if (workflow && key !== undefined) return { workflow, key };
  const service = str('service');
  const handler = str('handler');
  const idempotencyKey = str('idempotencyKey');
  if (service && handler && idempotencyKey) {
    return { service, handler, idempotencyKey, ...(key !== undefined ? { key } : {}) };
  }
  throw invalid(
    'name the invocation: invocationId, workflow + key, or service + handler + idempotencyKey',
  );
}

/**
 * An `unsubscribe`: 404 unless `subscription` is a string (that it names an open subscription is
 * the socket's to check).
 */
export function decodeUnsubscribe(f: RawFrame): UnsubscribeFrame {
  const subscription = f['subscription'];
  if (typeof subscription !== 'string') throw noSuchSubscription();
  return { id: f.id, type: 'unsubscribe', subscription };
}

/** The answer to an `unsubscribe` of no open subscription. */
export function noSuchSubscription(): IngressError {
  return new IngressError(404, ErrorCode.NOT_FOUND, 'no such subscription');
}

/** A `resolveAwakeable` or `rejectAwakeable`. */
export function decodeAwakeable(f: RawFrame): ResolveAwakeableFrame | RejectAwakeableFrame {
  const awakeableId = f['awakeableId'];
  if (typeof awakeableId !== 'string') throw invalid('awakeableId must be a string');
  if (f['type'] === 'resolveAwakeable') {
    const value = f['value'];
    const v = value !== undefined ? { value } : {};
    return { id: f.id, type: 'resolveAwakeable', awakeableId, ...v };
  }
  const reason = f['reason'];
  if (reason !== undefined && typeof reason !== 'string') throw invalid('reason must be a string');
  const r = reason !== undefined ? { reason } : {};
  return { id: f.id, type: 'rejectAwakeable', awakeableId, ...r };
}

/** A `cancel`: the invocation and the cancel token its `accepted` gave. */
export function decodeCancel(f: RawFrame): CancelFrame {
  const invocationId = f['invocationId'];
  const token = f['token'];
  if (typeof invocationId !== 'string') throw invalid('invocationId must be a string');
  if (token !== undefined && typeof token !== 'string') throw invalid('token must be a string');
  return { id: f.id, type: 'cancel', invocationId, ...(token !== undefined ? { token } : {}) };
}

/** The answer to a frame of no known `type`. */
export function unknownType(f: RawFrame): IngressError {
  const message = `unknown frame type ${JSON.stringify(f['type'])}`;
  return new IngressError(400, ErrorCode.UNKNOWN_TYPE, message);
}
