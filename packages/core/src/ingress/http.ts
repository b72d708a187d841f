import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { HandlerSpec } from '../define/definitions.js';
import type { Registry } from '../runtime/registry.js';
import type { Outcome } from '../store.js';
import { Stopper } from '../runtime/stop-signal.js';
import { BodyBudget, readBody, type BodyLimits } from './body.js';
import { answerFailure, decode, parseTarget, send, sendBytes } from './http-base.js';
import { bytesOf, isJson, type Serde } from '../define/serde.js';
import { IngressError, errorBody } from '../errors.js';
import { buildRequest, findHandler, type Payload } from './common.js';
import { httpHeaders, ingressRules, parseJson, type Rules } from './input.js';
import type { InvocationRef } from './frames.js';
import { IngressOperations, type IngressStore, type Telemetry } from './operations.js';

/** Options of the HTTP ingress. */
export interface IngressOptions extends Partial<BodyLimits> {
  /** The rules both public ingresses apply (see `ingressRules`). */
  rules?: Rules;
  logger?: Pick<Console, 'warn' | 'error'>;
  /** Traces and counts each request that starts an invocation (see `serve`'s options). */
  telemetry?: Telemetry | undefined;
}

/** Body limits of the public ingress: 10 MiB per body, 30 s to arrive, 128 MiB held at once. */
export const INGRESS_BODY_LIMITS: BodyLimits = {
  maxBodyBytes: 10 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
  maxBufferedBodyBytes: 128 * 1024 * 1024,
};

/** Restate's `source` of an error answer: the ingress itself, or the invocation it refers to. */
const FROM_INGRESS: Readonly<Record<string, unknown>> = { source: 'ingress' };
const FROM_INVOCATION: Readonly<Record<string, unknown>> = { source: 'invocation' };

interface Route {
  spec: HandlerSpec;
  key: string | undefined;
  send: boolean;
}

function resolveRoute(registry: Registry, segs: string[], forceSend: boolean | undefined): Route {
  const svcName = decode(segs[0] ?? '');
  const def = registry.service(svcName);
  if (!def) throw new IngressError(404, 'NOT_FOUND', `service '${svcName}' not found`);
  // After the service: [key,] handler [, 'send'].
  let rest = segs.length - 1;
  let send = forceSend ?? false;
  const keyed = def.kind !== 'service';
  if (forceSend === undefined && rest === (keyed ? 3 : 2) && segs[segs.length - 1] === 'send') {
    send = true;
    rest--;
  }
  if (rest !== (keyed ? 2 : 1)) {
    throw new IngressError(
      404,
      'NOT_FOUND',
      keyed ? `use /${svcName}/{key}/{handler}` : `use /${svcName}/{handler}`,
    );
  }
  const found = findHandler(
    registry,
    svcName,
    decode(segs[rest]!),
    keyed ? decode(segs[1]!) : undefined,
  );
  return { spec: found.spec, key: found.key, send };
}

type AttachOp = 'attach' | 'output' | 'lookup';

/**
 * Recognizes the attach/output forms of Restate's ingress and the invocation they name:
 * `GET /restate/invocation/{id}/attach|output`,
 * `GET /restate/invocation/{service}[/{key}]/{handler}/{idempotencyKey}/attach|output`,
 * `GET /restate/workflow/{name}/{key}/attach|output`, `GET /restate/attach|output/{id}`, and
 * `POST /restate/attach|output|lookup` with `{invocationId}`, `{service, key?, handler,
 * idempotencyKey}` (Restate's `target: 'idempotentInvocation'`), or `{workflow, key}` (also
 * Restate's `{target: 'workflow', workflowName, workflowKey}`); `lookup` answers `{invocationId}`.
 */
async function attachTarget(
  registry: Registry,
  segs: string[],
  req: IncomingMessage,
  read: () => Promise<unknown>,
): Promise<{ op: AttachOp; ref: InvocationRef } | undefined> {
  if (segs[0] !== 'restate') return undefined;
  const last = segs[segs.length - 1];
  const method = req.method;
  if (method === 'GET' && segs[1] === 'invocation' && (last === 'attach' || last === 'output')) {
    const mid = segs.slice(2, -1).map(decode);
    if (mid.length === 1) return { op: last, ref: { invocationId: mid[0]! } };
    const def = registry.service(mid[0]!);
    const keyed = def ? def.kind !== 'service' : mid.length === 4;
    if ((keyed && mid.length === 4) || (!keyed && mid.length === 3)) {
      const [service, a, b, c] = mid as [string, string, string, string?];
      const ref = keyed
        ? { service, key: a, handler: b, idempotencyKey: c! }
        : { service, handler: a, idempotencyKey: b };
      return { op: last, ref };
    }
    throw new IngressError(404, 'NOT_FOUND', `unknown path /${segs.join('/').slice(0, 512)}`);
  }
  if (
    method === 'GET' &&
    segs[1] === 'workflow' &&
    segs.length === 5 &&
    (last === 'attach' || last === 'output')
  ) {
    return { op: last, ref: { workflow: decode(segs[2]!), key: decode(segs[3]!) } };
  }
  if ((segs[1] === 'attach' || segs[1] === 'output') && method === 'GET' && segs.length === 3) {
    return { op: segs[1], ref: { invocationId: decode(segs[2]!) } };
  }
  if (
    (segs[1] === 'attach' || segs[1] === 'output' || segs[1] === 'lookup') &&
    method === 'POST' &&
    segs.length === 2
  ) {
    const body = (await read()) as Record<string, unknown> | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new IngressError(400, 'INVALID_REFERENCE', 'the body must be a JSON object');
    const str = (k: string): string | undefined =>
      typeof body[k] === 'string' ? body[k] : undefined;
    if (str('invocationId')) return { op: segs[1], ref: { invocationId: str('invocationId')! } };
    // Restate's current shape names a workflow `{target: 'workflow', workflowName, workflowKey}`.
    const workflow = str('workflow') ?? str('workflowName');
    const wfKey = str('key') ?? str('workflowKey');
    if (
      workflow &&
      wfKey !== undefined &&
      (body['target'] === undefined || body['target'] === 'workflow')
    ) {
      return { op: segs[1], ref: { workflow, key: wfKey } };
    }
    if (str('service') && str('handler') && str('idempotencyKey')) {
      const key = str('key');
      const ref = {
        service: str('service')!,
        handler: str('handler')!,
        idempotencyKey: str('idempotencyKey')!,
        ...(key !== undefined ? { key } : {}),
      };
      return { op: segs[1], ref };
    }
    throw new IngressError(
      400,
      'INVALID_REFERENCE',
      'give invocationId, {workflow, key} ({target: "workflow", workflowName, workflowKey}) or {service, key?, handler, idempotencyKey}',
    );
  }
  return undefined;
}

/** Writes an outcome as Restate's ingress does: 200 with the JSON value, or the error status. */
export function writeOutcome(
  res: ServerResponse,
  id: string,
  o: Outcome,
  output?: Serde<unknown>,
): void {
  if (o.ok && !isJson(output)) {
    // A handler whose output serde is not JSON answers its bytes, with the serde's content type.
    sendBytes(
      res,
      200,
      output!.contentType ?? 'application/octet-stream',
      bytesOf(output, o.value ?? ''),
      id,
    );
  } else if (o.ok) {
    send(res, 200, o.value ?? 'null', id);
  } else {
    const body = errorBody(o.error);
    send(res, body.code, JSON.stringify(body), id);
  }
}

/**
 * The HTTP ingress: `POST /{service}/{key?}/{handler}` returns the result,
 * `.../send` returns the invocation id (Restate's paths and status codes).
 */
export function createIngress(
  registry: Registry,
  store: IngressStore,
  options: IngressOptions = {},
): Server {
  const ops = new IngressOperations(registry, store, { transport: 'http', ...options.telemetry });
  const limits: BodyLimits = {
    maxBodyBytes: options.maxBodyBytes ?? INGRESS_BODY_LIMITS.maxBodyBytes,
    bodyTimeoutMs: options.bodyTimeoutMs ?? INGRESS_BODY_LIMITS.bodyTimeoutMs,
    maxBufferedBodyBytes: options.maxBufferedBodyBytes ?? INGRESS_BODY_LIMITS.maxBufferedBodyBytes,
  };
  const rules = options.rules ?? ingressRules();
  const budget = new BodyBudget(limits.maxBufferedBodyBytes);
  const body = async (req: IncomingMessage): Promise<string> =>
    (await readBody(req, limits, budget)).toString('utf8');
  /** The body as JSON (undefined when empty). */
  const json = async (req: IncomingMessage): Promise<unknown> => {
    const text = await body(req);
    return text.length === 0 ? undefined : parseJson(text, rules.maxJsonDepth);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = parseTarget(req.url ?? '/');
    const segs = url.segs;
    if (req.method === 'GET' && url.pathname === '/health') {
      send(res, 200, '{"status":"ok"}');
      return;
    }
    const target =
      segs[0] === 'restate' ? await attachTarget(registry, segs, req, () => json(req)) : undefined;
    if (target) {
      const id = await ops.lookup(target.ref);
      if (id === undefined)
        throw new IngressError(
          404,
          'NOT_FOUND',
          `no invocation found for ${url.pathname.slice(0, 512)}`,
        );
      const found = await ops.findById(id);
      if (!found)
        throw new IngressError(404, 'NOT_FOUND', `invocation ${id.slice(0, 256)} not found`);
      if (target.op === 'lookup') {
        send(res, 200, JSON.stringify({ invocationId: id }));
        return;
      }
      const outcome =
        target.op === 'output'
          ? ops.output(found, FROM_INGRESS)
          : (found.info.outcome ?? (await attachWhileConnected(ops, id, req)));
      writeOutcome(res, id, outcome, found.output);
      return;
    }
    if (req.method !== 'POST')
      throw new IngressError(
        405,
        'METHOD_NOT_ALLOWED',
        `${String(req.method).slice(0, 32)} is not allowed here`,
      );
    if (
      segs[0] === 'restate' &&
      (segs[1] === 'awakeables' || segs[1] === 'a') &&
      segs.length === 4
    ) {
      const id = decode(segs[2]!);
      const op = segs[3];
      if (op !== 'resolve' && op !== 'reject')
        throw new IngressError(404, 'NOT_FOUND', `unknown path ${url.pathname.slice(0, 512)}`);
      const text = await body(req);
      if (op === 'resolve') {
        // The value is kept as its text, once checked to be JSON.
        if (text !== '') parseJson(text, rules.maxJsonDepth, 'Failed to deserialize input: ');
        await ops.resolveAwakeable(id, text === '' ? undefined : text);
      } else await ops.rejectAwakeable(id, text);
      send(res, 202, undefined);
      return;
    }
    let forceSend: boolean | undefined;
    let path = segs;
    if (segs[0] === 'restate' && (segs[1] === 'call' || segs[1] === 'send')) {
      forceSend = segs[1] === 'send';
      path = segs.slice(2);
    }
    // A service registered by another process of the engine (a push deployment) since this one
    // last looked: read the registrations first.
    const missing = registry.ensure(decode(path[0] ?? ''));
    if (missing) await missing;
    const route = resolveRoute(registry, path, forceSend);
    let payload: Payload;
    if (isJson(route.spec.input)) {
      const ctype = String(req.headers['content-type'] ?? '');
      const text = await body(req);
      let input: unknown;
      if (text.length > 0) {
        if (ctype !== '' && !/^application\/(.+\+)?json\b/i.test(ctype)) {
          throw new IngressError(
            415,
            'UNSUPPORTED_CONTENT_TYPE',
            `content-type ${ctype.slice(0, 128)} is not supported; send application/json`,
          );
        }
        input = parseJson(text, rules.maxJsonDepth, 'Failed to deserialize input: ', {
          source: 'invocation',
        });
      }
      payload = { json: input };
    } else {
      // A handler whose input serde is not JSON takes the body's bytes as they are.
      payload = { bytes: await readBody(req, limits, budget) };
    }
    const delayRaw = url.query?.get('delay') ?? null;
    const idemHeader = req.headers['idempotency-key'];
    const request = buildRequest(route.spec, route.key, payload, rules, {
      send: route.send,
      ...(delayRaw !== null ? { delay: delayRaw } : {}),
      ...(typeof idemHeader === 'string' && idemHeader.length > 0
        ? { idempotencyKey: idemHeader }
        : {}),
      headers: httpHeaders(req.headers, rules),
    });
    if (route.send) {
      const accepted = await ops.send(request);
      const id = accepted.invocationId;
      send(res, 202, `{"invocationId":${JSON.stringify(id)},"status":"${accepted.status}"}`, id);
      return;
    }
    const gone = whileConnected(req);
    try {
      const accepted = await ops.call(request, gone.stopper, FROM_INVOCATION);
      writeOutcome(res, accepted.invocationId, await accepted.outcome, route.spec.output);
    } finally {
      gone.done();
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => answerFailure(req, res, e, options.logger));
  });
  // Node's own limit on receiving a whole request: a backstop behind the body timeout.
  server.requestTimeout = limits.bodyTimeoutMs + server.headersTimeout;
  return server;
}

/** The stop reason once a request is answered. */
const REQUEST_DONE = Object.assign(new Error('request finished'), { name: 'AbortError' });

/** A stopper that fires when the client's connection closes; `done()` stops watching (and stops). */
function whileConnected(req: IncomingMessage): { stopper: Stopper; done(): void } {
  const ac = new Stopper();
  const onClose = (): void => {
    const e = new Error('client went away');
    e.name = 'AbortError';
    ac.abort(e);
  };
  req.socket.once('close', onClose);
  return {
    stopper: ac,
    done: () => {
      req.socket.off('close', onClose);
      ac.abort(REQUEST_DONE);
    },
  };
}

function attachWhileConnected(
  ops: IngressOperations,
  id: string,
  req: IncomingMessage,
): Promise<Outcome> {
  const gone = whileConnected(req);
  return ops.attach(id, gone.stopper.signal).finally(() => gone.done());
}
