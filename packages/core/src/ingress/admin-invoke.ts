/**
 * `POST /services/{service}/handlers/{handler}/invoke` on the admin port: an operator (the web
 * UI's service page, the CLI) starts an invocation without reaching the public ingress across
 * origins. It is a send through the ingress core (`IngressOperations.send`) with the checks of
 * the HTTP ingress (`findHandler`, `buildRequest`: the handler's input schema, key, idempotency
 * key, delay), so it can start nothing a client of the ingress could not; a private handler is
 * not found here either. No request header is stored with the invocation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, IngressError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import { readBody, type BodyBudget, type BodyLimits } from './body.js';
import { buildRequest, findHandler } from './common.js';
import { sendJson } from './http-base.js';
import { parseJson, type Rules } from './input.js';
import { IngressOperations, type IngressStore, type Telemetry } from './operations.js';

/** The fields of an invoke request's body. */
const FIELDS = new Set(['key', 'input', 'idempotencyKey', 'delay']);

/** What the invoke route needs: the ingress's store and rules, and the admin port's body limits. */
export interface InvokeDeps {
  registry: Registry;
  store: IngressStore;
  rules: Rules;
  limits: BodyLimits;
  budget: BodyBudget;
  /** Traces and counts each invoke. */
  telemetry?: Telemetry | undefined;
}

/** The answer of the invoke route: the invocation started (or the earlier one a key matched). */
export interface InvokeAnswer {
  invocationId: string;
  status: 'Accepted' | 'PreviouslyAccepted';
}

/**
 * Creates the invoke route's handler. The target is checked before the body is read (404 for an
 * unknown or private handler), then the body: `application/json` (415), within the admin port's
 * size (413) and depth (400 `JSON_TOO_DEEP`), an object `{ key?, input?, idempotencyKey?, delay? }`
 * (400 `INVALID_INPUT` for anything else), then the request as the HTTP ingress checks it.
 * Answers 202 {@link InvokeAnswer}.
 */
export function createInvoke(
  deps: InvokeDeps,
): (req: IncomingMessage, res: ServerResponse, service: string, handler: string) => Promise<void> {
  const ops = new IngressOperations(deps.registry, deps.store, {
    transport: 'admin',
    ...deps.telemetry,
  });
  return async (req, res, service, handler) => {
    const spec = deps.registry.handler(service, handler);
    if (!deps.registry.service(service))
      throw new IngressError(
        404,
        ErrorCode.NOT_FOUND,
        `service '${service.slice(0, 256)}' not found`,
      );
    if (!spec || spec.options.ingressPrivate) {
      const message = `handler '${service.slice(0, 256)}/${handler.slice(0, 256)}' not found`;
      throw new IngressError(404, ErrorCode.NOT_FOUND, message);
    }
    const ctype = String(req.headers['content-type'] ?? '');
    if (!/^application\/json\s*(;|$)/i.test(ctype)) {
      throw new IngressError(
        415,
        ErrorCode.UNSUPPORTED_CONTENT_TYPE,
        'send the invocation as application/json: { "key"?, "input" }',
      );
    }
    const text = (await readBody(req, deps.limits, deps.budget)).toString('utf8');
    const body = text === '' ? undefined : parseJson(text, deps.rules.maxJsonDepth + 1);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new IngressError(
        400,
        ErrorCode.INVALID_INPUT,
        'the body must be a JSON object { "key"?, "input"?, "idempotencyKey"?, "delay"? }',
      );
    }
    const fields = body as Record<string, unknown>;
    const unknown = Object.keys(fields).find((k) => !FIELDS.has(k));
    if (unknown !== undefined) {
      throw new IngressError(
        400,
        ErrorCode.INVALID_INPUT,
        `unknown field ${JSON.stringify(unknown.slice(0, 64))}: give key, input, idempotencyKey, delay`,
      );
    }
    const delay = fields['delay'];
    if (delay !== undefined && typeof delay !== 'number' && typeof delay !== 'string') {
      throw new IngressError(
        400,
        ErrorCode.INVALID_DELAY,
        'delay is milliseconds or a duration text',
      );
    }
    const found = findHandler(deps.registry, service, handler, fields['key']);
    const request = buildRequest(found.spec, found.key, { json: fields['input'] }, deps.rules, {
      send: true,
      ...(delay !== undefined ? { delay } : {}),
      ...(fields['idempotencyKey'] !== undefined
        ? { idempotencyKey: fields['idempotencyKey'] }
        : {}),
      headers: {},
    });
    const accepted = await ops.send(request);
    const answer: InvokeAnswer = { invocationId: accepted.invocationId, status: accepted.status };
    sendJson(res, 202, answer);
  };
}
