/**
 * A push deployment's request handler, independent of any transport: `GET …/discover` answers
 * the manifest, `POST …/invoke/{service}/{handler}` runs one step of an attempt (see
 * `protocol.ts`). The fetch, Lambda and `node:http` entry points adapt it to their runtimes.
 */
import type { AnyDefinition } from '../define/definitions.js';
import { ErrorCode } from '../errors.js';
import { ServiceCatalog } from '../ingress/service-info.js';
import { createExecutor } from '../runtime/invoker.js';
import { Registry } from '../runtime/registry.js';
import {
  INVOKE_CONTENT_TYPE,
  MANIFEST_CONTENT_TYPE,
  PUSH_PROTOCOL_VERSION,
  SIGNATURE_HEADER,
  pushRequestSchema,
  type PushManifest,
  type PushRequest,
} from './protocol.js';
import { RecordingAttempt, startedFrom } from './recording-attempt.js';
import type { Store } from '../store/store.js';
import { verifier } from './signing.js';

/** Options of `createEndpointHandler` (every runtime's). */
export interface EndpointHandlerOptions {
  /** The services, objects and workflows this deployment runs. */
  services: AnyDefinition[];
  /**
   * Public keys (Ed25519, PEM or base64 SPKI) of the engines allowed to invoke this deployment:
   * with any, a request without a valid signature from one of them gets 401 and runs nothing
   * (docs/PROTOCOL.md "Signing"). Default: `LATCHKEY_IDENTITY_KEYS` (comma-separated) where the
   * runtime has `process.env`; without keys every request is served (keep the URL private).
   */
  identityKeys?: string[];
  /** Where handler consoles go; default `console`. */
  logger?: Console;
  /** Largest request body (bytes); larger ones get 413. Default 32 MiB. */
  maxBodyBytes?: number;
  /**
   * Direct mode (docs/PROTOCOL.md): the engine's own store (e.g. `createRedisStore` on the
   * engine's Redis and prefix), for a deployment that can reach it. The engine then sends each
   * attempt once; the deployment commits its steps through the store's fenced writes and ends
   * the attempt itself: one request per attempt instead of one per step.
   */
  store?: Pick<Store, 'init' | 'adoptAttempt'>;
}

/** A request as every runtime's adapter hands it over. */
export interface EndpointRequest {
  method: string;
  /** The URL's path (its query is ignored). */
  path: string;
  header(name: string): string | undefined;
  body: string;
}

/** An answer for the adapter to send. */
export interface EndpointResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Handles one request of a push deployment. */
export type PushEndpoint = ((req: EndpointRequest) => Promise<EndpointResponse>) & {
  /** The body size limit, for adapters that read bodies themselves. */
  readonly maxBodyBytes: number;
};

const json = (status: number, body: unknown, type = 'application/json'): EndpointResponse => ({
  status,
  headers: { 'content-type': type },
  body: JSON.stringify(body),
});

/** A refusal, shaped as the engine's own: `{ code: <status>, errorCode, message }`. */
const refuse = (status: number, errorCode: string, message: string): EndpointResponse =>
  json(status, { code: status, errorCode, message });

/** `LATCHKEY_IDENTITY_KEYS`, where the runtime has `process.env` (Workers may not). */
function keysFromEnv(): string[] | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env?.['LATCHKEY_IDENTITY_KEYS'];
  const keys = (v ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  return keys.length > 0 ? keys : undefined;
}

/** Builds the transport-independent handler of a deployment. */
export function createPushEndpoint(options: EndpointHandlerOptions): PushEndpoint {
  const registry = new Registry(options.services);
  const store = options.store;
  if (store && !store.adoptAttempt) throw new TypeError('this store cannot take attempts over');
  const keys = options.identityKeys ?? keysFromEnv();
  if (store && !keys) {
    // A direct request commits to the store: an unsigned one could run any handler as any attempt.
    throw new TypeError('direct mode (a store) needs identityKeys: the engine must sign requests');
  }
  const manifest: PushManifest = {
    protocol: 'latchkey-push',
    minVersion: PUSH_PROTOCOL_VERSION,
    maxVersion: PUSH_PROTOCOL_VERSION,
    ...(store ? { direct: true } : {}),
    services: new ServiceCatalog(registry).list(),
  };
  // Direct mode: suspends when it waits (the engine pushes it again when it can go on), not
  // after steps, which it commits itself.
  const direct = store
    ? createExecutor(registry, {
        inactivityTimeoutMs: 0,
        suspendAfterSteps: false,
        logger: options.logger ?? console,
        tracing: undefined,
      })
    : undefined;
  let ready: Promise<void> | undefined;
  // Inactivity 0: the handler stops at the first thing it must wait for, and at every commit.
  const executor = createExecutor(registry, {
    inactivityTimeoutMs: 0,
    logger: options.logger ?? console,
    tracing: undefined,
  });
  const verify = verifier(keys);
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;

  const handle = async (req: EndpointRequest): Promise<EndpointResponse> => {
    const path = req.path.split('?')[0]!;
    const segs = path.split('/').filter((s) => s !== '');
    const discover = segs.at(-1) === 'discover';
    const invoke = segs.at(-3) === 'invoke';
    if (!discover && !invoke) return refuse(404, ErrorCode.NOT_FOUND, 'no such route');
    if (verify && !verify(path, req.body, req.header(SIGNATURE_HEADER))) {
      return refuse(401, ErrorCode.UNAUTHORIZED, 'the request is not signed by a known engine');
    }
    if (discover) {
      if (req.method !== 'GET') return refuse(405, ErrorCode.METHOD_NOT_ALLOWED, 'use GET');
      return json(200, manifest, MANIFEST_CONTENT_TYPE);
    }
    if (req.method !== 'POST') return refuse(405, ErrorCode.METHOD_NOT_ALLOWED, 'use POST');
    const type = req.header('content-type')?.split(';')[0]?.trim();
    if (type !== INVOKE_CONTENT_TYPE) {
      return refuse(415, ErrorCode.UNSUPPORTED_CONTENT_TYPE, `send ${INVOKE_CONTENT_TYPE}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.body);
    } catch {
      return refuse(400, ErrorCode.INVALID_JSON, 'the body is not JSON');
    }
    const checked = pushRequestSchema.safeParse(parsed);
    if (!checked.success) {
      return refuse(400, ErrorCode.INVALID_BODY, `not a push request: ${checked.error.message}`);
    }
    const request = checked.data as PushRequest;
    let service: string, handler: string;
    try {
      [service, handler] = segs.slice(-2).map(decodeURIComponent) as [string, string];
    } catch {
      return refuse(400, ErrorCode.INVALID_PATH, 'the path is not well-formed');
    }
    if (request.target.service !== service || request.target.handler !== handler) {
      return refuse(400, ErrorCode.INVALID_PATH, 'the path does not name the request target');
    }
    if (request.handle !== undefined) {
      if (!store || !direct) {
        return refuse(400, ErrorCode.INVALID_BODY, 'this deployment runs no attempt directly');
      }
      // A failed start is tried again by the next request.
      await (ready ??= store.init().catch((e: unknown) => {
        ready = undefined;
        throw e;
      }));
      let adopted;
      try {
        adopted = await store.adoptAttempt!(request.handle, startedFrom(request));
      } catch (e) {
        return refuse(409, ErrorCode.INVALID_ID, (e as Error).message);
      }
      try {
        await direct.run(adopted.attempt);
      } finally {
        adopted.release();
      }
      const from = request.journal.length;
      return json(
        200,
        { v: 1, fence: request.fence, type: 'done', from, entries: [], effects: [] },
        INVOKE_CONTENT_TYPE,
      );
    }
    const attempt = new RecordingAttempt(request);
    const ran = executor.run(attempt).then(() => attempt.taken);
    const answer = await Promise.race([attempt.answer, ran]);
    if (!answer) return refuse(500, ErrorCode.INTERNAL, 'the attempt ended without an answer');
    return json(200, answer, INVOKE_CONTENT_TYPE);
  };
  return Object.assign(handle, { maxBodyBytes });
}
