/**
 * The ingress core's pure parts, without Redis: decoding untrusted WebSocket frames into the
 * protocol's types (each refusal with its code and message), and the one place error bodies are
 * built (HTTP bodies, `error` frames, failed results).
 */
import { describe, expect, it } from 'vitest';
import type { ErrorFrame, ServerFrame } from '@latchkey/core/protocol';
// The sources, as the decoders below: one copy of the error classes.
import {
  DurableError,
  ErrorCode,
  IngressError,
  clientError,
  errorBody,
  internalError,
} from '../src/errors.js';
import {
  decodeAwakeable,
  decodeCancel,
  decodeEnvelope,
  decodeRef,
  decodeUnsubscribe,
  type RawFrame,
} from '../src/ingress/ws-decode.js';

/** The code, status and message of what `fn` throws. */
function refusal(fn: () => unknown): { status: number; errorCode: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IngressError);
    const err = e as IngressError;
    return { status: err.status, errorCode: err.kind, message: err.message };
  }
  throw new Error('expected a refusal');
}

const raw = (f: Record<string, unknown>): RawFrame => ({ id: 'r1', ...f });

describe('decoding WebSocket frames', () => {
  it('checks the envelope: JSON, an object, an id of 1 to 128 characters', () => {
    expect(refusal(() => decodeEnvelope('{', 64))).toMatchObject({
      status: 400,
      errorCode: 'INVALID_JSON',
    });
    expect(refusal(() => decodeEnvelope('[1]', 64))).toEqual({
      status: 400,
      errorCode: 'INVALID_FRAME',
      message: 'a frame must be a JSON object',
    });
    const noId = 'every request needs an id: a string of 1 to 128 characters';
    expect(refusal(() => decodeEnvelope('{"type":"ping"}', 64)).message).toBe(noId);
    const long = JSON.stringify({ id: 'i'.repeat(129) });
    expect(refusal(() => decodeEnvelope(long, 64)).message).toBe(noId);
    expect(refusal(() => decodeEnvelope('{"id":""}', 64)).message).toBe(noId);
    expect(decodeEnvelope(JSON.stringify({ id: 'i'.repeat(128), type: 'ping' }), 64)).toEqual({
      id: 'i'.repeat(128),
      type: 'ping',
    });
    const deep = `{"id":"d","x":${'['.repeat(70)}${']'.repeat(70)}}`;
    expect(refusal(() => decodeEnvelope(deep, 64)).errorCode).toBe('JSON_TOO_DEEP');
  });

  it('names an invocation by id, by workflow and key, or by idempotency key', () => {
    const byId = raw({ invocationId: 'inv_1', workflow: 'w', key: 'k' });
    expect(decodeRef(byId)).toEqual({ invocationId: 'inv_1' });
    const emptyId = raw({ invocationId: '', workflow: 'w', key: '' });
    expect(decodeRef(emptyId)).toEqual({ workflow: 'w', key: '' });
    expect(decodeRef(raw({ service: 's', handler: 'h', idempotencyKey: 'i' }))).toEqual({
      service: 's',
      handler: 'h',
      idempotencyKey: 'i',
    });
    expect(decodeRef(raw({ service: 's', handler: 'h', idempotencyKey: 'i', key: 'k' }))).toEqual({
      service: 's',
      handler: 'h',
      idempotencyKey: 'i',
      key: 'k',
    });
    expect(refusal(() => decodeRef(raw({ workflow: 'w', key: 1 })))).toEqual({
      status: 400,
      errorCode: 'INVALID_FRAME',
      message:
        'name the invocation: invocationId, workflow + key, or service + handler + idempotencyKey',
    });
  });

  it('checks awakeable, cancel and unsubscribe fields', () => {
    const type = 'rejectAwakeable';
    const badId = raw({ type, awakeableId: 1 });
    expect(refusal(() => decodeAwakeable(badId)).message).toBe('awakeableId must be a string');
    expect(refusal(() => decodeAwakeable(raw({ type, awakeableId: 'a', reason: 42 })))).toEqual({
      status: 400,
      errorCode: 'INVALID_FRAME',
      message: 'reason must be a string',
    });
    const reject = raw({ type, awakeableId: 'a' });
    expect(decodeAwakeable(reject)).toEqual({ id: 'r1', type, awakeableId: 'a' });
    const resolve = raw({ type: 'resolveAwakeable', awakeableId: 'a', value: { x: 1 } });
    expect(decodeAwakeable(resolve)).toEqual({
      id: 'r1',
      type: 'resolveAwakeable',
      awakeableId: 'a',
      value: { x: 1 },
    });
    const noInv = raw({ invocationId: 5 });
    expect(refusal(() => decodeCancel(noInv)).message).toBe('invocationId must be a string');
    const badToken = raw({ invocationId: 'i', token: 5 });
    expect(refusal(() => decodeCancel(badToken)).message).toBe('token must be a string');
    expect(decodeCancel(raw({ invocationId: 'i', token: 't' }))).toEqual({
      id: 'r1',
      type: 'cancel',
      invocationId: 'i',
      token: 't',
    });
    expect(refusal(() => decodeUnsubscribe(raw({ subscription: 3 })))).toEqual({
      status: 404,
      errorCode: 'NOT_FOUND',
      message: 'no such subscription',
    });
  });
});

describe('error bodies', () => {
  it('an IngressError is a DurableError whose body is {code, errorCode, message, ...extra}', () => {
    const e = new IngressError(470, ErrorCode.NOT_READY, 'not yet', { source: 'ingress' });
    expect(e).toBeInstanceOf(DurableError);
    expect(e.code).toBe(470);
    expect(e.status).toBe(470);
    expect(e.kind).toBe('NOT_READY');
    expect(JSON.stringify(e.body())).toBe(
      '{"code":470,"errorCode":"NOT_READY","message":"not yet","source":"ingress"}',
    );
    const frame: ErrorFrame = { id: 'x', type: 'error', ...e.body() };
    const answer: ServerFrame = frame;
    expect(answer).toMatchObject({ type: 'error', code: 470, errorCode: 'NOT_READY' });
    expect(internalError().body()).toEqual({
      code: 500,
      errorCode: 'INTERNAL',
      message: 'internal error',
    });
  });

  it("a failed invocation's body: its status, kind and metadata (only when it has some)", () => {
    expect(errorBody({ name: 'TerminalError', code: 'TERMINAL', message: 'no' })).toEqual({
      code: 500,
      errorCode: 'TERMINAL',
      message: 'no',
    });
    const metadata = { a: 'b' };
    const code = ErrorCode.CANCELLED;
    const cancelled = { name: 'CancelledError', code, message: 'c', status: 409 };
    expect(errorBody({ ...cancelled, metadata })).toEqual({
      code: 409,
      errorCode: 'CANCELLED',
      message: 'c',
      metadata,
    });
  });

  it("maps the store's refusals a client may see, and nothing else", () => {
    const store = (kind: string): Error => Object.assign(new Error(`refused: ${kind}`), { kind });
    expect(clientError(store('REDIS_WIPED'))?.body()).toEqual({
      code: 503,
      errorCode: 'REDIS_WIPED',
      message: 'refused: REDIS_WIPED',
    });
    expect(clientError(store('INVALID_NAME'))?.status).toBe(400);
    expect(clientError(store('CLOSED'))).toBeUndefined();
    expect(clientError(store('constructor'))).toBeUndefined();
    expect(clientError(new Error('boom'))).toBeUndefined();
    expect(clientError(null)).toBeUndefined();
  });
});
