/**
 * The admin API's push deployments (Restate's shape; docs/ADMIN-API.md "Deployments"):
 * - `GET /deployments`, `GET /deployments/{id}`
 * - `POST /deployments` with `{ uri, headers?, timeoutMs?, eagerStateBytes?, force? }`: discovers the endpoint and
 *   registers it (201; 200 when it was registered already with the same services); 409 `CONFLICT`
 *   when a service is served already, or when the handlers changed and `force` is not set; 502
 *   `DISCOVERY_FAILED` when the endpoint does not answer discovery
 * - `DELETE /deployments/{id}[?force=true]`: 200; 409 `CONFLICT` while invocations of its
 *   services have not ended (unless forced: they then fail with 404); 404
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, IngressError } from '../errors.js';
import type { Deployments } from '../push/engine.js';
import type { DeploymentInfo, DeploymentOptions } from '../push/deployments.js';
import { readBody, type BodyBudget, type BodyLimits } from './body.js';
import { sendJson } from './http-base.js';
import type { AdminStore } from './admin-ops.js';
import { parseJson } from './input.js';

export interface DeploymentRoutes {
  deployments: Deployments;
  /** Counts a deployment's unfinished invocations before it is removed. */
  store: Pick<AdminStore, 'counts'>;
  limits: BodyLimits;
  budget: BodyBudget;
  maxJsonDepth: number;
}

/** A deployment as the API shows it: its headers' names only (their values may be secrets). */
function shown(d: DeploymentInfo): object {
  const { headers, ...rest } = d;
  return headers ? { ...rest, headers: Object.keys(headers) } : rest;
}

function invalid(message: string): IngressError {
  return new IngressError(400, ErrorCode.INVALID_BODY, message);
}

/** What a registration's body asks for; refuses anything else precisely. */
export function registration(body: unknown): DeploymentOptions & { force: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object: { "uri": "https://…" }');
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['uri', 'headers', 'timeoutMs', 'eagerStateBytes', 'force'].includes(k)) {
      throw invalid(`unknown field ${JSON.stringify(k.slice(0, 64))}`);
    }
  }
  if (typeof b['uri'] !== 'string' || b['uri'] === '' || b['uri'].length > 2048) {
    throw invalid('uri must be a URL of at most 2,048 characters');
  }
  const out: DeploymentOptions & { force: boolean } = { uri: b['uri'], force: b['force'] === true };
  if (b['force'] !== undefined && typeof b['force'] !== 'boolean')
    throw invalid('force is a boolean');
  const h = b['headers'];
  if (h !== undefined) {
    if (typeof h !== 'object' || h === null || Array.isArray(h))
      throw invalid('headers is an object');
    const entries = Object.entries(h as Record<string, unknown>);
    if (entries.length > 32) throw invalid('at most 32 headers');
    for (const [k, v] of entries) {
      if (
        !/^[A-Za-z0-9-]{1,64}$/.test(k) ||
        typeof v !== 'string' ||
        !/^[\t\x20-\x7e]{0,4096}$/.test(v)
      ) {
        throw invalid(
          `header ${JSON.stringify(k.slice(0, 64))}: a token name and a printable value`,
        );
      }
    }
    out.headers = Object.fromEntries(entries) as Record<string, string>;
  }
  const t = b['timeoutMs'];
  if (t !== undefined) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 100 || t > 3_600_000) {
      throw invalid('timeoutMs is a whole number of ms from 100 to 3,600,000');
    }
    out.timeoutMs = t;
  }
  const e = b['eagerStateBytes'];
  if (e !== undefined) {
    if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e > 64 * 1024 * 1024) {
      throw invalid('eagerStateBytes is a whole number of bytes from 0 to 64 MiB');
    }
    out.eagerStateBytes = e;
  }
  return out;
}

/** Answers a deployments route; false for any other request. */
export async function routeDeployments(
  deps: DeploymentRoutes,
  req: IncomingMessage,
  res: ServerResponse,
  segs: readonly string[],
  query?: URLSearchParams,
): Promise<boolean> {
  if (segs[0] !== 'deployments' || segs.length > 2) return false;
  const { deployments } = deps;
  if (segs.length === 1 && req.method === 'GET') {
    await deployments.refresh();
    sendJson(res, 200, { deployments: deployments.list().map(shown) });
    return true;
  }
  if (segs.length === 1 && req.method === 'POST') {
    const ctype = String(req.headers['content-type'] ?? '');
    if (!/^application\/json\s*(;|$)/i.test(ctype)) {
      throw new IngressError(415, ErrorCode.UNSUPPORTED_CONTENT_TYPE, 'send application/json');
    }
    const text = (await readBody(req, deps.limits, deps.budget)).toString('utf8');
    const { force, ...opts } = registration(
      text === '' ? undefined : parseJson(text, deps.maxJsonDepth),
    );
    const { info, created } = await deployments.register(opts, force);
    sendJson(res, created ? 201 : 200, shown(info));
    return true;
  }
  if (segs.length === 2 && (req.method === 'GET' || req.method === 'DELETE')) {
    const id = segs[1]!;
    if (req.method === 'GET') {
      await deployments.refresh();
      const info = deployments.get(id);
      if (!info)
        throw new IngressError(404, ErrorCode.NOT_FOUND, `no deployment ${id.slice(0, 64)}`);
      sendJson(res, 200, shown(info));
      return true;
    }
    await deployments.refresh();
    const info = deployments.get(id);
    if (!info) throw new IngressError(404, ErrorCode.NOT_FOUND, `no deployment ${id.slice(0, 64)}`);
    if (query?.get('force') !== 'true') {
      // Its invocations that have not ended would fail with 404 once nobody serves it.
      let open = 0;
      for (const svc of info.services) {
        const c = await deps.store.counts({ service: svc.name });
        open += c.total - (c.byStatus.completed ?? 0);
      }
      if (open > 0) {
        throw new IngressError(
          409,
          ErrorCode.CONFLICT,
          `deployment ${id} has ${open} invocations that have not ended: remove it once they have, or with ?force=true (they then fail with 404)`,
        );
      }
    }
    await deployments.unregister(id);
    sendJson(res, 200, { id, removed: true });
    return true;
  }
  return false;
}
