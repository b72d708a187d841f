/**
 * What both public ingresses (HTTP and WebSocket) decide before anything reaches the store: the
 * handler a request may reach, the request built from its checked parts (`input.ts`) and the
 * invocations a client may see. A request that fails a check
 * changes nothing. docs/SECURITY.md says why each rule exists.
 */
import type { HandlerSpec } from '../define/definitions.js';
import { durationMs } from '../define/duration.js';
import { SerdeValidationError, checkOf, isJson, storedOf, type Serde } from '../define/serde.js';
import type { Registry } from '../runtime/registry.js';
import { IngressError } from '../errors.js';
import type { InvocationRequest, Target } from '../store.js';
import {
  DAY,
  LONE_SURROGATE,
  MAX_KEY_LENGTH,
  checkIdempotencyKey,
  checkKey,
  parseDelay,
  type Rules,
} from './input.js';

/** Finds the handler a request names (HTTP path or WebSocket frame); a private one is not found. */
export function findHandler(
  registry: Registry,
  service: unknown,
  handler: unknown,
  key: unknown,
): { spec: HandlerSpec; key: string | undefined } {
  if (typeof service !== 'string' || typeof handler !== 'string') {
    throw new IngressError(400, 'INVALID_FRAME', 'service and handler must be strings');
  }
  const def = registry.service(service);
  if (!def)
    throw new IngressError(404, 'NOT_FOUND', `service '${service.slice(0, 256)}' not found`);
  const spec = registry.handler(service, handler);
  if (!spec || spec.options.ingressPrivate)
    throw new IngressError(
      404,
      'NOT_FOUND',
      `handler '${service}/${handler.slice(0, 256)}' not found`,
    );
  if (def.kind === 'service') {
    if (key !== undefined)
      throw new IngressError(400, 'INVALID_KEY', `service '${service}' takes no key`);
    return { spec, key: undefined };
  }
  if (typeof key !== 'string')
    throw new IngressError(400, 'INVALID_KEY', `'${service}' needs a string key`);
  checkKey(key);
  return { spec, key };
}

/** The output serde of a target's handler, when this process serves it (else JSON). */
export function outputOf(registry: Registry, target: Target): Serde<unknown> | undefined {
  return registry.handler(target.service, target.handler)?.output;
}

/**
 * Whether a public ingress may show an invocation of `target`: not one of an `ingressPrivate`
 * handler (those are reached only from other handlers, so attach, output, subscribe, cancel and
 * awakeables answer 404 for them, as for an invocation that does not exist).
 */
export function publicTarget(registry: Registry, target: Target): boolean {
  return registry.handler(target.service, target.handler)?.options.ingressPrivate !== true;
}

/**
 * A request's input: a decoded JSON value (the body of a JSON handler, a frame's `input`), or raw
 * bytes (the body of a handler whose input serde is not JSON).
 */
export type Payload = { json: unknown } | { bytes: Uint8Array };

/**
 * The input as it is kept, checked by the handler's input serde: JSON text (validated by a zod or
 * Standard Schema serde), or another serde's bytes (deserialized once to check them) in base64.
 * A frame gives such bytes as a base64 string.
 */
function storedInput(spec: HandlerSpec, payload: Payload): string {
  const serde = spec.input;
  if (isJson(serde)) {
    if (!('json' in payload))
      throw new IngressError(400, 'INVALID_INPUT', 'this handler takes JSON');
    const check = checkOf(serde);
    const value = check ? check(payload.json) : payload.json;
    return value === undefined ? '' : JSON.stringify(value);
  }
  let bytes: Uint8Array;
  if ('bytes' in payload) bytes = payload.bytes;
  else if (payload.json === undefined) bytes = new Uint8Array(0);
  else if (typeof payload.json === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(payload.json))
    bytes = new Uint8Array(Buffer.from(payload.json, 'base64'));
  else
    throw new IngressError(
      400,
      'INVALID_INPUT',
      `this handler takes ${serde!.contentType ?? 'bytes'}: over the WebSocket, give its input as a base64 string`,
    );
  serde!.deserialize(bytes);
  return storedOf(serde, bytes);
}

/**
 * Validates a request for a handler (input schema, delay, idempotency key) and builds the store's
 * {@link InvocationRequest}. Throws {@link IngressError}s.
 */
export function buildRequest(
  spec: HandlerSpec,
  key: string | undefined,
  payload: Payload,
  rules: Rules,
  opts: {
    send: boolean;
    delay?: string | number;
    idempotencyKey?: unknown;
    headers?: Record<string, string>;
  },
): InvocationRequest {
  let input: string;
  try {
    input = storedInput(spec, payload);
  } catch (e) {
    if (e instanceof IngressError) throw e;
    if (e instanceof SerdeValidationError) {
      throw new IngressError(400, 'INVALID_INPUT', e.message, {
        issues: e.issues.map((i) => ({ ...i, path: i.path.map(String) })),
      });
    }
    throw new IngressError(400, 'INVALID_INPUT', (e as Error).message);
  }
  const delayMs = opts.delay === undefined ? 0 : parseDelay(opts.delay, rules.maxDelayMs);
  if (delayMs > 0 && !opts.send)
    throw new IngressError(400, 'INVALID_DELAY', 'delay is only allowed on sends');
  const idempotencyKey = opts.idempotencyKey;
  if (idempotencyKey !== undefined) checkIdempotencyKey(idempotencyKey);
  const o = spec.options;
  return {
    target: { service: spec.service, handler: spec.name, ...(key !== undefined ? { key } : {}) },
    mode: spec.mode,
    input,
    headers: opts.headers ?? {},
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    delayMs,
    journalRetentionMs: o.journalRetention !== undefined ? durationMs(o.journalRetention) : DAY,
    idempotencyRetentionMs:
      o.idempotencyRetention !== undefined ? durationMs(o.idempotencyRetention) : DAY,
    workflowRetentionMs: o.workflowRetention !== undefined ? durationMs(o.workflowRetention) : DAY,
  };
}

/**
 * Checks the reference of an attach/output/subscribe request by idempotency key or workflow id
 * (every name reaches the store's key layout, which takes only well-formed ones).
 */
export function checkReference(ref: {
  service?: unknown;
  handler?: unknown;
  workflow?: unknown;
  key?: unknown;
  idempotencyKey?: unknown;
}): void {
  for (const name of [ref.service, ref.handler, ref.workflow]) {
    if (
      name !== undefined &&
      (typeof name !== 'string' || LONE_SURROGATE.test(name) || name.length > MAX_KEY_LENGTH)
    ) {
      throw new IngressError(
        400,
        'INVALID_REFERENCE',
        `service, handler and workflow names must be strings of at most ${MAX_KEY_LENGTH} characters in well-formed Unicode`,
      );
    }
  }
  if (ref.key !== undefined) checkKey(ref.key as string);
  if (ref.idempotencyKey !== undefined) checkIdempotencyKey(ref.idempotencyKey);
}
