/**
 * The engine's side of a push deployment: discovery (its manifest, turned into definitions the
 * ingress and the workers serve) and the HTTP client of its invoke route.
 */
import { createHash } from 'node:crypto';
import {
  handlers,
  object,
  service,
  workflow,
  type AnyDefinition,
  type HandlerDefinitionOptions,
  type HandlerMap,
} from '../define/definitions.js';
import type { RetryPolicy, WorkflowOptions } from '../define/options.js';
import { serde } from '../define/serde.js';
import { ErrorCode, IngressError, RetryableError } from '../errors.js';
import type { HandlerInfo, HandlerOptionsInfo, ServiceInfo } from '../ingress/service-info.js';
import {
  INVOKE_CONTENT_TYPE,
  MANIFEST_CONTENT_TYPE,
  PUSH_PROTOCOL_VERSION,
  SIGNATURE_HEADER,
  manifestSchema,
  pushResponseSchema,
  type PushManifest,
  type PushRequest,
  type PushResponse,
} from './protocol.js';
import { signer } from './signing.js';
import { Registry } from '../runtime/registry.js';

/** A deployment to register: its URL, and how to reach it. */
export interface DeploymentOptions {
  /** The endpoint's base URL: `<uri>/discover`, `<uri>/invoke/{service}/{handler}`. */
  uri: string;
  /** Headers sent with every request (e.g. an API gateway's key). */
  headers?: Record<string, string>;
  /** How long one request may take before the attempt is retried (ms); default 60,000. */
  timeoutMs?: number;
  /**
   * Bytes of a key's state sent with each request (names and JSON values); the rest is sent by
   * name only and fetched when the handler reads it (one more request each time). Default 1 MiB.
   * Direct mode always sends the whole state.
   */
  eagerStateBytes?: number;
}

/** A registered deployment as the admin API shows it. */
export interface DeploymentInfo {
  /** `dp_` and a hash of the URI: the same URI is the same deployment. */
  id: string;
  uri: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  eagerStateBytes?: number;
  /** When it was registered (ms). */
  createdAt: number;
  /** It reaches the engine's store and runs attempts itself (direct mode). */
  direct?: boolean;
  services: ServiceInfo[];
}

/** What the engine's deployments share: the signing key, if requests are signed. */
export interface DeploymentClientOptions {
  /** Ed25519 private key (PEM or base64 PKCS#8) the engine signs requests with. */
  signingKey?: string;
}

/** A fetch failure's reason: undici's "fetch failed" names it only in its cause. */
function reason(e: unknown): string {
  const err = e as Error & { cause?: { message?: string } };
  return err.cause?.message ? `${err.message} (${err.cause.message})` : err.message;
}

/** The largest answer to an invoke request the engine reads (bytes, characters). */
const MAX_ANSWER_CHARS = 64 * 1024 * 1024;

/** The longest manifest discovery reads (characters). */
const MAX_MANIFEST_CHARS = 4 * 1024 * 1024;

/** The id of the deployment at `uri`. */
export function deploymentId(uri: string): string {
  return `dp_${createHash('sha256').update(normalizeUri(uri)).digest('base64url').slice(0, 20)}`;
}

/** The URI without a trailing slash; refuses what is not an http(s) URL. */
export function normalizeUri(uri: string): string {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new IngressError(
      400,
      ErrorCode.INVALID_BODY,
      `not a URL: ${JSON.stringify(uri.slice(0, 200))}`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new IngressError(400, ErrorCode.INVALID_BODY, 'a deployment URI is http or https');
  }
  return u.href.replace(/\/+$/, '');
}

/**
 * Asks the deployment at `opts.uri` for its manifest (signed with `client.signingKey`, when
 * given); throws a precise error when it cannot.
 */
export async function discover(
  opts: DeploymentOptions,
  client: DeploymentClientOptions = {},
): Promise<DeploymentInfo> {
  const uri = normalizeUri(opts.uri);
  const url = `${uri}/discover`;
  const headers: Record<string, string> = { ...opts.headers, accept: MANIFEST_CONTENT_TYPE };
  if (client.signingKey)
    headers[SIGNATURE_HEADER] = signer(client.signingKey)(new URL(url).pathname, '');
  let res: Response;
  try {
    res = await fetch(url, {
      headers,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (e) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} is unreachable: ${reason(e)}`,
    );
  }
  const text = await res.text().catch(() => '');
  if (text.length > MAX_MANIFEST_CHARS) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} sent a manifest over 4 MiB`,
    );
  }
  if (res.status !== 200) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} answered discovery with ${res.status}`,
    );
  }
  let manifest: PushManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(text)) as unknown as PushManifest;
  } catch (e) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} sent no valid manifest: ${(e as Error).message}`,
    );
  }
  if (manifest.minVersion > PUSH_PROTOCOL_VERSION || manifest.maxVersion < PUSH_PROTOCOL_VERSION) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} speaks push protocol ${manifest.minVersion}..${manifest.maxVersion}, this engine ${PUSH_PROTOCOL_VERSION}`,
    );
  }
  const info: DeploymentInfo = {
    id: deploymentId(uri),
    uri,
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.eagerStateBytes !== undefined ? { eagerStateBytes: opts.eagerStateBytes } : {}),
    createdAt: Date.now(),
    ...(manifest.direct === true ? { direct: true } : {}),
    services: manifest.services,
  };
  // What the engine will build from it must build: a manifest it could not serve is refused here,
  // before anything is stored.
  try {
    new Registry(definitionsOf(info));
  } catch (e) {
    throw new IngressError(
      502,
      ErrorCode.DISCOVERY_FAILED,
      `deployment ${uri} describes services this engine cannot serve: ${(e as Error).message}`,
    );
  }
  return info;
}

function retryPolicyOf(r: HandlerOptionsInfo['retryPolicy']): RetryPolicy | undefined {
  if (!r) return undefined;
  const p: RetryPolicy = {};
  if (r.maxAttempts !== undefined)
    p.maxAttempts = r.maxAttempts === null ? Infinity : r.maxAttempts;
  if (r.initialIntervalMs !== undefined) p.initialInterval = r.initialIntervalMs;
  if (r.exponentiationFactor !== undefined) p.exponentiationFactor = r.exponentiationFactor;
  if (r.maxIntervalMs !== undefined) p.maxInterval = r.maxIntervalMs;
  if (r.onMaxAttempts !== undefined) p.onMaxAttempts = r.onMaxAttempts;
  return p;
}

function optionsOf(o: HandlerOptionsInfo): WorkflowOptions {
  const w: WorkflowOptions = {};
  if (o.inactivityTimeoutMs !== undefined) w.inactivityTimeout = o.inactivityTimeoutMs;
  if (o.abortTimeoutMs !== undefined) w.abortTimeout = o.abortTimeoutMs;
  if (o.idempotencyRetentionMs !== undefined) w.idempotencyRetention = o.idempotencyRetentionMs;
  if (o.journalRetentionMs !== undefined) w.journalRetention = o.journalRetentionMs;
  if (o.workflowRetentionMs !== undefined) w.workflowRetention = o.workflowRetentionMs;
  if (o.ingressPrivate !== undefined) w.ingressPrivate = o.ingressPrivate;
  const retry = retryPolicyOf(o.retryPolicy);
  if (retry) w.retryPolicy = retry;
  return w;
}

function runsRemotely(): Promise<never> {
  return Promise.reject(new Error('this handler runs on its deployment'));
}

function handlerOf(info: HandlerInfo): HandlerMap[string] {
  const payload = (type: string | undefined): unknown =>
    type !== undefined && type !== 'application/json' ? serde.binary : undefined;
  const opts: HandlerDefinitionOptions = {
    ...optionsOf(info.options),
    ...(payload(info.inputContentType) ? { input: payload(info.inputContentType) } : {}),
    ...(payload(info.outputContentType) ? { output: payload(info.outputContentType) } : {}),
    ...(info.description !== undefined ? { description: info.description } : {}),
    ...(info.metadata !== undefined ? { metadata: info.metadata } : {}),
  };
  if (info.kind === 'shared') return handlers.object.shared(opts, runsRemotely);
  if (info.kind === 'workflow') return handlers.workflow.workflow(opts, runsRemotely);
  return handlers.handler(opts, runsRemotely);
}

/** The definitions a deployment's manifest describes (their handlers run on the deployment). */
export function definitionsOf(info: DeploymentInfo): AnyDefinition[] {
  return info.services.map((s) => {
    const hs: HandlerMap = {};
    for (const h of s.handlers) hs[h.name] = handlerOf(h);
    const spec = {
      name: s.name,
      handlers: hs,
      ...(s.description !== undefined ? { description: s.description } : {}),
      ...(s.metadata !== undefined ? { metadata: s.metadata } : {}),
    };
    if (s.kind === 'object') return object(spec);
    if (s.kind === 'workflow') return workflow(spec);
    return service(spec as never);
  });
}

/** Sends invoke requests to one deployment. */
export class DeploymentClient {
  readonly info: DeploymentInfo;
  private readonly sign: ((path: string, body: string) => string) | undefined;

  constructor(info: DeploymentInfo, opts: DeploymentClientOptions = {}) {
    this.info = info;
    this.sign = opts.signingKey ? signer(opts.signingKey) : undefined;
  }

  /**
   * POSTs one step. Resolves with the checked answer; rejects with a `RetryableError` (its
   * `retryAfter` from a 429/503's `Retry-After`) for anything the engine should retry: a network
   * failure, a timeout, any status but 200, an answer that is not one.
   */
  async invoke(req: PushRequest, signal: AbortSignal): Promise<PushResponse> {
    const t = req.target;
    const url = `${this.info.uri}/invoke/${encodeURIComponent(t.service)}/${encodeURIComponent(t.handler)}`;
    const body = JSON.stringify(req);
    const headers: Record<string, string> = {
      ...this.info.headers,
      'content-type': INVOKE_CONTENT_TYPE,
      accept: INVOKE_CONTENT_TYPE,
      'x-latchkey-invocation-id': req.id,
    };
    if (this.sign) headers[SIGNATURE_HEADER] = this.sign(new URL(url).pathname, body);
    const timeoutMs = this.info.timeoutMs ?? 60_000;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      });
      if (Number(res.headers.get('content-length') ?? 0) > MAX_ANSWER_CHARS) {
        await res.body?.cancel();
        throw new Error(`an answer over ${MAX_ANSWER_CHARS} bytes`);
      }
      text = await res.text();
      if (text.length > MAX_ANSWER_CHARS)
        throw new Error(`an answer over ${MAX_ANSWER_CHARS} bytes`);
    } catch (e) {
      if (e instanceof RetryableError) throw e;
      const timedOut = (e as Error).name === 'TimeoutError';
      throw new RetryableError(
        timedOut
          ? `deployment ${this.info.uri} did not answer within ${timeoutMs} ms`
          : `deployment ${this.info.uri} is unreachable: ${reason(e)}`,
      );
    }
    if (res.status !== 200) {
      const after = retryAfterMs(res.headers.get('retry-after'));
      throw new RetryableError(
        `deployment ${this.info.uri} answered ${res.status}: ${text.slice(0, 300)}`,
        after !== undefined ? { retryAfter: after } : {},
      );
    }
    let answer: PushResponse;
    try {
      answer = pushResponseSchema.parse(JSON.parse(text)) as PushResponse;
    } catch (e) {
      throw new RetryableError(
        `deployment ${this.info.uri} sent no valid answer (${ErrorCode.INVALID_BODY}): ${(e as Error).message.slice(0, 300)}`,
      );
    }
    if (answer.type === 'done' && req.handle === undefined) {
      throw new RetryableError(
        `deployment ${this.info.uri} answered done to a request it had to answer`,
      );
    }
    if (answer.fence !== req.fence || answer.from !== req.journal.length) {
      throw new RetryableError(`deployment ${this.info.uri} answered another request`);
    }
    return answer;
  }
}

/** A `Retry-After` header in ms (seconds or an HTTP date), capped at one hour. */
export function retryAfterMs(h: string | null): number | undefined {
  if (h === null || h.trim() === '') return undefined;
  const s = Number(h);
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(h) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, Math.round(ms)), 3_600_000);
}
