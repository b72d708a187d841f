import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { InvocationStatus, Store } from '../store.js';

/** Options of the admin API. */
export interface AdminOptions {
  /** Bearer token required on every request except `GET /health`; none = open (bind it to loopback). */
  token?: string;
  /** Largest request body (bytes); default 1 MiB. */
  maxBodyBytes?: number;
}

const STATUSES = new Set<string>([
  'delayed',
  'queued',
  'ready',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
] satisfies InvocationStatus[]);

class AdminError extends Error {
  readonly status: number;
  readonly errorCode: string;
  constructor(status: number, errorCode: string, message: string) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new AdminError(413, 'BODY_TOO_LARGE', `body exceeds ${max} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch (e) {
    throw new AdminError(400, 'INVALID_JSON', `invalid JSON: ${(e as Error).message}`);
  }
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const got = Buffer.from(String(req.headers.authorization ?? ''));
  const want = Buffer.from(`Bearer ${token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * The admin API: inspect and control invocations, read and patch object state.
 *
 * - `GET /health`
 * - `GET /invocations?service=&key=&status=&limit=`
 * - `GET /invocations/{id}` (status, target, attempts, last failure, journal, completions)
 * - `PATCH /invocations/{id}/cancel|kill|pause|resume|purge`
 * - `GET /services/{service}/state/{key}`, `POST /services/{service}/state/{key}` with
 *   `{ name: value | null }` (null deletes; refused with 409 while a handler holds the key)
 */
export function createAdmin(store: Store, options: AdminOptions = {}): Server {
  const max = options.maxBodyBytes ?? 1024 * 1024;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const segs = url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    if (req.method === 'GET' && url.pathname === '/health') {
      json(res, 200, { status: 'ok' });
      return;
    }
    if (!authorized(req, options.token)) throw new AdminError(401, 'UNAUTHORIZED', 'missing or wrong bearer token');
    if (segs[0] === 'invocations') {
      if (segs.length === 1 && req.method === 'GET') {
        const status = url.searchParams.get('status') ?? undefined;
        if (status !== undefined && !STATUSES.has(status)) throw new AdminError(400, 'INVALID_STATUS', `unknown status ${status}`);
        const limit = Number(url.searchParams.get('limit') ?? 100);
        const list = await store.list({
          ...(url.searchParams.get('service') ? { service: url.searchParams.get('service')! } : {}),
          ...(url.searchParams.get('key') ? { key: url.searchParams.get('key')! } : {}),
          ...(status ? { status: status as InvocationStatus } : {}),
          limit: Number.isFinite(limit) && limit > 0 ? Math.min(limit, 10_000) : 100,
        });
        json(res, 200, { invocations: list });
        return;
      }
      const id = segs[1]!;
      if (segs.length === 2 && req.method === 'GET') {
        const info = await store.describe(id, true);
        if (!info) throw new AdminError(404, 'NOT_FOUND', `invocation ${id} not found`);
        json(res, 200, info);
        return;
      }
      if (segs.length === 3 && req.method === 'PATCH') {
        const op = segs[2];
        const ops: Record<string, (id: string) => Promise<boolean>> = {
          cancel: (i) => store.cancel(i),
          kill: (i) => store.kill(i),
          pause: (i) => store.pause(i),
          resume: (i) => store.resume(i),
          purge: (i) => store.purge(i),
        };
        const fn = op !== undefined ? ops[op] : undefined;
        if (!fn) throw new AdminError(404, 'NOT_FOUND', `unknown operation ${op}`);
        const info = await store.describe(id);
        if (!info) throw new AdminError(404, 'NOT_FOUND', `invocation ${id} not found`);
        if (!(await fn(id))) {
          throw new AdminError(409, 'CONFLICT', `cannot ${op} invocation ${id} in status ${info.status}`);
        }
        json(res, 200, { invocationId: id, [op as string]: true });
        return;
      }
    }
    if (segs[0] === 'services' && segs[2] === 'state' && segs.length === 4) {
      const [, service, , key] = segs as [string, string, string, string];
      if (req.method === 'GET') {
        const st = await store.getState(service, key);
        json(res, 200, { service, key, state: Object.fromEntries([...st].map(([k, v]) => [k, JSON.parse(v) as unknown])) });
        return;
      }
      if (req.method === 'POST') {
        const body = await readJson(req, max);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw new AdminError(400, 'INVALID_PATCH', 'the body must be a JSON object of state values (null deletes)');
        }
        if (!(await store.patchState(service, key, body as Record<string, unknown>))) {
          throw new AdminError(409, 'KEY_BUSY', `an exclusive handler holds ${service}/${key}; retry when it is free`);
        }
        json(res, 200, { service, key, patched: Object.keys(body) });
        return;
      }
    }
    throw new AdminError(404, 'NOT_FOUND', `no admin route ${req.method} ${url.pathname}`);
  };
  return createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof AdminError) json(res, e.status, { code: e.status, errorCode: e.errorCode, message: e.message });
      else json(res, 500, { code: 500, errorCode: 'INTERNAL', message: (e as Error).message });
    });
  });
}
