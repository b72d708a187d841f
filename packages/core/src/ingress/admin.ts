import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Registry } from '../runtime/registry.js';
import { BodyBudget, readBody, type BodyLimits } from './body.js';
import { IngressError } from '../errors.js';
import { parseJson } from './input.js';
import { AdminOperations, isControl, type AdminStore } from './admin-ops.js';
import { routeListing, STATUSES } from './admin-list.js';
import { routeObjects } from './admin-objects.js';
import { invocationRoute, type InvocationRoutes } from './admin-invocations.js';
import { DEFAULT_PREVIEW_BYTES } from './admin-view.js';
import { answerFailure, decode, parseTarget, sendJson as json } from './http-base.js';
import { ServiceCatalog, servicesRoute } from './service-info.js';
import { EventStreams, type EventStreamOptions } from './admin-events.js';
import { createUiHandler, isUiTarget } from './admin-ui.js';
import { createInvoke } from './admin-invoke.js';
import { routeDeployments } from './admin-deployments.js';
import type { Deployments } from '../push/engine.js';
import type { Rules } from './input.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { IngressStore, Telemetry } from './operations.js';

/** Options of the admin API. */
export interface AdminOptions extends EventStreamOptions {
  /**
   * Bearer token required on every request except `GET /health`; none = open, which `serve()`
   * allows only on a loopback address.
   */
  token?: string;
  /** Largest request body (bytes); default 1 MiB. */
  maxBodyBytes?: number;
  /** Deepest JSON nesting of a request body; default 64. */
  maxJsonDepth?: number;
  /**
   * Bytes of JSON text a value (input, result, journaled value, promise, state) shows in the
   * admin views before it is cut (`?full=1` shows every value whole); default 1,024.
   */
  previewBytes?: number;
  /** Default and largest `limit` of a bulk action (`POST /invocations/bulk/{op}`); default 1,000. */
  maxBulk?: number;
  logger?: Pick<Console, 'error'>;
  /** Serve the web UI at `/ui` (its files without a token, its API calls with it); default true. */
  ui?: boolean;
  /**
   * The ingress's store and rules: with them the admin port also serves
   * `POST /services/{service}/handlers/{handler}/invoke` (`admin-invoke.ts`).
   */
  invoke?: { store: IngressStore; rules: Rules; telemetry?: Telemetry | undefined };
  /** Serves `GET /metrics` (Prometheus text) and counts kills. */
  metrics?: Metrics;
  /** The process's push deployments: with them the admin port serves `/deployments`. */
  deployments?: Deployments;
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const got = Buffer.from(String(req.headers.authorization ?? ''));
  const want = Buffer.from(`Bearer ${token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A limit option: a whole number of at least 1, else the server refuses to start. */
function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`${name} must be a whole number >= 1`);
  return v;
}

/** Whether `host` names this machine's loopback interface only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The admin API, for operators: inspect and control invocations, read and patch object state.
 * Every route but `GET /health` checks the token first, before anything of the request is parsed.
 *
 * - `GET /health`
 * - `GET /events?service=&id=` (live events, `text/event-stream`; see `admin-events.ts`)
 * - `GET /invocations` (filters, order, cursor: `admin-list.ts`), `GET /invocations/counts`
 * - `GET /invocations/{id}` (status, target, attempts, last failure, journal, completions)
 * - `PATCH /invocations/{id}/cancel|kill|pause|resume|purge`
 * - `GET /services`, `GET /services/{service}` (handlers, kinds, options, JSON Schemas) and
 *   `GET /openapi.json` (the ingress's routes; see `service-info.ts`)
 * - `GET /invocations?service=&key=&status=&limit=`
 * - `GET /invocations/{id}[?full=1]` (status, target, attempts, timestamps, parent and children,
 *   last failure with its step, the journal as a timeline; see `admin-invocations.ts`)
 * - `PATCH /invocations/{id}/cancel|kill|pause|resume|purge`
 * - `POST /invocations/{id}/restart-as-new` (`{ keepPrefix }`), `POST /invocations/bulk/{op}`
 *   with filters as query parameters and `{ dryRun, limit }`
 * - `GET /services/{service}/state/{key}`, `POST /services/{service}/state/{key}` with an
 *   `application/json` body `{ name: value | null }` (null deletes; refused with 409 while a
 *   handler holds the key; 404 for a service this process does not serve or that has no state)
 * - `GET /services/{service}/keys`, `GET /services/{service}/keys/{key}/queue`,
 *   `GET /services/{workflow}/keys/{key}/promises`, `DELETE /services/{service}/state/{key}`
 *   (`admin-objects.ts`)
 * - `POST /services/{service}/handlers/{handler}/invoke` with `{ key?, input }` (with `invoke`)
 * - `GET|POST /deployments`, `GET|DELETE /deployments/{id}` (with `deployments`;
 *   `admin-deployments.ts`)
 * - the web UI's files at `/ui` (GET/HEAD, no token; unless `ui` is false)
 */
export function createAdmin(
  store: AdminStore,
  registry: Registry,
  options: AdminOptions = {},
): Server {
  const ops = new AdminOperations(store, registry, options.metrics);
  const catalog = new ServiceCatalog(registry);
  const streams = new EventStreams(store, options);
  const limits: BodyLimits = {
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    bodyTimeoutMs: 30_000,
    maxBufferedBodyBytes: 16 * 1024 * 1024,
  };
  const budget = new BodyBudget(limits.maxBufferedBodyBytes);
  const maxDepth = options.maxJsonDepth ?? 64;
  const previewBytes = positive(
    'admin.previewBytes',
    options.previewBytes ?? DEFAULT_PREVIEW_BYTES,
  );
  // Invocation detail, restart-as-new and bulk actions (admin-invocations.ts).
  const invocations: InvocationRoutes = {
    store,
    statuses: STATUSES,
    previewBytes,
    maxBulk: positive('admin.maxBulk', options.maxBulk ?? 1000),
    limits,
    budget,
    maxJsonDepth: maxDepth,
    metrics: options.metrics,
  };
  const ui = options.ui === false ? undefined : createUiHandler();
  const invoke = options.invoke
    ? createInvoke({ registry, ...options.invoke, limits, budget })
    : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'GET' && req.url === '/health') {
      json(res, 200, { status: 'ok' });
      return;
    }
    // The UI's files hold no data: served without the token (the page asks for it).
    if (ui && isUiTarget(req.url ?? '')) {
      ui(req, res);
      return;
    }
    if (!authorized(req, options.token))
      throw new IngressError(401, 'UNAUTHORIZED', 'missing or wrong bearer token');
    const url = parseTarget(req.url ?? '/');
    const segs = url.segs.map(decode);
    const query = url.query ?? new URLSearchParams();
    if (options.metrics && req.method === 'GET' && segs.length === 1 && segs[0] === 'metrics') {
      const { contentType, text } = await options.metrics.scrape();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    const described = servicesRoute(catalog, req.method, segs);
    if (described !== undefined) {
      json(res, 200, described);
      return;
    }
    if (options.deployments && segs[0] === 'deployments') {
      const deployments = options.deployments;
      const deps = { deployments, store, limits, budget, maxJsonDepth: maxDepth };
      if (await routeDeployments(deps, req, res, segs, query)) return;
    }
    if (segs[0] === 'events' && segs.length === 1 && req.method === 'GET') {
      streams.serve(req, res, query);
      return;
    }
    // ---- The indexed listing and the object/workflow views (admin-list.ts, admin-objects.ts).
    if (await routeListing(req.method, segs, query, { store, registry }, res)) return;
    if (await routeObjects(req.method, segs, query, { store, registry, previewBytes }, res)) return;
    // ----
    if (segs[0] === 'invocations') {
      if (await invocationRoute(invocations, req, res, segs, query)) return;
      const id = segs[1]!;
      if (segs.length === 3 && req.method === 'PATCH') {
        const op = segs[2];
        if (!isControl(op))
          throw new IngressError(404, 'NOT_FOUND', `unknown operation ${String(op).slice(0, 64)}`);
        await ops.control(id, op);
        json(res, 200, { invocationId: id, [op]: true });
        return;
      }
    }
    if (invoke && segs[0] === 'services' && segs[2] === 'handlers' && segs[4] === 'invoke') {
      if (segs.length === 5 && req.method === 'POST') {
        await invoke(req, res, segs[1]!, segs[3]!);
        return;
      }
    }
    if (segs[0] === 'services' && segs[2] === 'state' && segs.length === 4) {
      const [, service, , key] = segs as [string, string, string, string];
      if (req.method === 'GET') {
        json(res, 200, { service, key, state: await ops.getState(service, key) });
        return;
      }
      if (req.method === 'POST') {
        // JSON only: a browser page can send text/plain or a form across sites without asking.
        const ctype = String(req.headers['content-type'] ?? '');
        if (!/^application\/json\s*(;|$)/i.test(ctype)) {
          throw new IngressError(
            415,
            'UNSUPPORTED_CONTENT_TYPE',
            'send the state patch as application/json',
          );
        }
        ops.checkStateTarget(service, key);
        const text = (await readBody(req, limits, budget)).toString('utf8');
        const body = text === '' ? undefined : parseJson(text, maxDepth);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw new IngressError(
            400,
            'INVALID_PATCH',
            'the body must be a JSON object of state values (null deletes)',
          );
        }
        await ops.patchState(service, key, body as Record<string, unknown>);
        json(res, 200, { service, key, patched: Object.keys(body) });
        return;
      }
    }
    throw new IngressError(
      404,
      'NOT_FOUND',
      `no admin route ${String(req.method).slice(0, 16)} ${url.pathname.slice(0, 256)}`,
    );
  };
  return createServer((req, res) => {
    handle(req, res).catch((e: unknown) => answerFailure(req, res, e, options.logger));
  });
}
