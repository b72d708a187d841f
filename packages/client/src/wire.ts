/**
 * What the client puts on the wire and reads from it: request ids, idempotency keys, invocation
 * references, payloads (bytes travel as base64), and the errors answers carry.
 */
import type { ErrorFrame, InvocationRef, ResultFrame } from '@latchkey/core/protocol';
import { CallError } from './errors.js';
import type { InvocationTarget } from './types.js';

export function nameOf(def: string | { name: string }): string {
  return typeof def === 'string' ? def : def.name;
}

/** A random id (idempotency keys): a UUID where the platform has one. */
export function randomId(): string {
  type Crypto = { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array };
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.randomUUID) {
    try {
      return c.randomUUID();
    } catch {
      // insecure browser context: fall through
    }
  }
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The fields of a request that name an invocation. */
export function targetFields(t: InvocationTarget): InvocationRef {
  if (typeof t === 'string') return { invocationId: t };
  if ('invocationId' in t) return { invocationId: t.invocationId };
  if ('workflow' in t) return { workflow: nameOf(t.workflow), key: t.key };
  return {
    service: nameOf(t.service),
    handler: t.handler,
    idempotencyKey: t.idempotencyKey,
    ...(t.key !== undefined ? { key: t.key } : {}),
  };
}

/**
 * The {@link CallError} of an `error` answer or a failed `result`. The server's frames are not
 * trusted to be well-formed: missing fields get defaults.
 */
export function errorOf(f: ErrorFrame | ResultFrame): CallError {
  const invocationId = typeof f.invocationId === 'string' ? f.invocationId : undefined;
  type Loose = { code?: unknown; errorCode?: unknown; message?: unknown; issues?: unknown };
  const e = (f.type === 'result' ? (f as { error?: unknown }).error : f) as
    (Loose & { metadata?: unknown }) | undefined;
  const status = typeof e?.code === 'number' ? e.code : 500;
  const code = typeof e?.errorCode === 'string' ? e.errorCode : 'UNKNOWN';
  const message = typeof e?.message === 'string' ? e.message : 'request failed';
  return new CallError(status, code, message, {
    ...(invocationId !== undefined ? { invocationId } : {}),
    ...(e?.issues !== undefined ? { issues: e.issues } : {}),
    ...(typeof e?.metadata === 'object' && e.metadata !== null
      ? { metadata: e.metadata as Record<string, string> }
      : {}),
  });
}

/**
 * A frame's input: bytes (for a handler whose input serde is not JSON, such as `serde.binary`)
 * travel as a base64 string; anything else as JSON.
 */
export function wireInput(input: unknown): unknown {
  if (!(input instanceof Uint8Array)) return input;
  let bin = '';
  for (const b of input) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * A result frame's value: bytes when the server marks it `encoding: 'base64'` (an output serde
 * that is not JSON).
 */
export function resultValue(f: ResultFrame & { ok: true }): unknown {
  const v = f.value;
  if (f.encoding !== 'base64' || typeof v !== 'string') return v;
  const bin = atob(v);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function abortError(signal: AbortSignal): CallError {
  return new CallError(499, 'ABORTED', 'the request was aborted', { cause: signal.reason });
}

/** An answer the client does not understand. */
export function protocolError(type: unknown): CallError {
  return new CallError(502, 'PROTOCOL', `unexpected answer ${JSON.stringify(type)}`);
}

/** UTF-8 length of a string. */
export function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}
