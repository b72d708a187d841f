/**
 * The admin API's views of objects and workflows (docs/ADMIN-API.md "Objects and workflows"):
 * a service's keys, a key's queue, a workflow run's promises, and clearing a key's state through
 * its fence. Each route names an object or workflow this process serves (404 otherwise) and a
 * well-formed key; query parameters are checked as the listing's are.
 */
import type { ServerResponse } from 'node:http';
import { ErrorCode, IngressError, type SerializedError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import { LIST_LIMIT_MAX, decodeKeyCursor } from '../store/listing.js';
import type { AdminStore } from '../store/store.js';
import { queryValues } from './admin-list.js';
import { sendJson } from './http-base.js';
import { checkKey } from './input.js';
import { preview, type Preview } from './admin-view.js';

/** One promise of a workflow run, as `GET …/promises` answers it. */
interface PromiseView {
  name: string;
  state: 'pending' | 'resolved' | 'rejected';
  value?: Preview;
  error?: SerializedError;
}

/** `?full=1` (or `true`): values whole; `0`/`false` or absent: previews. */
function parseFull(raw: string | undefined): boolean {
  if (raw === undefined || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new IngressError(400, ErrorCode.INVALID_QUERY, `full must be 1 or 0`);
}

function parseLimit(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= LIST_LIMIT_MAX)) {
    const message = `limit must be a whole number from 1 to ${LIST_LIMIT_MAX}`;
    throw new IngressError(400, ErrorCode.INVALID_LIMIT, message);
  }
  return n;
}

/** The object or workflow a route names: one this process serves (a workflow, if `workflow`). */
function checkService(registry: Registry, service: string, workflow = false): void {
  const def = registry.service(service);
  if (!def || def.kind === 'service' || (workflow && def.kind !== 'workflow')) {
    const what = workflow ? 'workflow' : 'object or workflow';
    throw new IngressError(404, ErrorCode.NOT_FOUND, `no ${what} named '${service.slice(0, 256)}'`);
  }
}

/** What the object routes need of the store. */
export type ObjectStore = Pick<AdminStore, 'listKeys' | 'keyQueue' | 'promises' | 'clearState'>;

/**
 * Answers the object and workflow routes: `GET /services/{service}/keys`,
 * `GET /services/{service}/keys/{key}/queue`, `GET /services/{workflow}/keys/{key}/promises` and
 * `DELETE /services/{service}/state/{key}`. Returns false for any other request.
 */
export async function routeObjects(
  method: string | undefined,
  segs: string[],
  params: URLSearchParams,
  deps: { store: ObjectStore; registry: Registry; previewBytes: number },
  res: ServerResponse,
): Promise<boolean> {
  if (segs[0] !== 'services' || segs.length < 3) return false;
  const service = segs[1]!;
  const { store, registry } = deps;
  if (method === 'GET' && segs[2] === 'keys' && segs.length === 3) {
    checkService(registry, service);
    const v = queryValues(params, ['cursor', 'limit']);
    const cursor = v.get('cursor');
    if (cursor !== undefined && decodeKeyCursor(cursor) === undefined)
      throw new IngressError(400, ErrorCode.INVALID_CURSOR, 'the cursor is not a keys cursor');
    const limit = parseLimit(v.get('limit'));
    const page = {
      ...(cursor !== undefined ? { cursor } : {}),
      ...(limit !== undefined ? { limit } : {}),
    };
    sendJson(res, 200, await store.listKeys(service, page));
    return true;
  }
  if (method === 'GET' && segs[2] === 'keys' && segs.length === 5 && segs[4] === 'queue') {
    checkService(registry, service);
    const key = segs[3]!;
    checkKey(key);
    queryValues(params, []);
    sendJson(res, 200, await store.keyQueue(service, key));
    return true;
  }
  if (method === 'GET' && segs[2] === 'keys' && segs.length === 5 && segs[4] === 'promises') {
    checkService(registry, service, true);
    const key = segs[3]!;
    checkKey(key);
    const full = parseFull(queryValues(params, ['full']).get('full'));
    const view = { previewBytes: deps.previewBytes, full };
    const promises = (await store.promises(service, key)).map((p): PromiseView => {
      const c = p.completion;
      if (!c) return { name: p.name, state: 'pending' };
      if (!c.ok) return { name: p.name, state: 'rejected', error: c.e };
      return { name: p.name, state: 'resolved', value: preview(c.v ?? 'null', view) };
    });
    sendJson(res, 200, { promises });
    return true;
  }
  if (method === 'DELETE' && segs[2] === 'state' && segs.length === 4) {
    checkService(registry, service);
    const key = segs[3]!;
    checkKey(key);
    queryValues(params, []);
    if (!(await store.clearState(service, key))) {
      const message = `an exclusive handler holds ${service}/${key}; retry when it is free`;
      throw new IngressError(409, ErrorCode.KEY_BUSY, message);
    }
    sendJson(res, 200, { service, key, cleared: true });
    return true;
  }
  return false;
}
