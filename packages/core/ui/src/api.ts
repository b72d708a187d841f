/**
 * The admin API as the UI calls it: the same origin as the page (the admin port serves both),
 * every request with the operator's bearer token, every refusal as an {@link ApiError} carrying
 * the API's machine-readable code. docs/ADMIN-API.md is the contract.
 */

const TOKEN_KEY = 'latchkey.adminToken';

/** The API's base URL: the admin port's root, the parent of the UI's `/ui/`. */
export const API_BASE = new URL('../', location.href);

/** The operator's token for this tab (sessionStorage: gone when the tab closes). */
export function getToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Keeps the token for this tab; `undefined` forgets it. */
export function setToken(token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * Takes a token given in the address as `#token=…` (links, automation), keeps it for the tab
 * and removes it from the address bar (and the history entry). Returns whether there was one.
 */
export function takeTokenFromHash(): boolean {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (!m) return false;
  let token: string;
  try {
    token = decodeURIComponent(m[1]!);
  } catch {
    token = m[1]!;
  }
  setToken(token);
  history.replaceState(null, '', `${location.pathname}${location.search}#/invocations`);
  return true;
}

/** A refusal of the admin API (or a network failure: status 0). */
export class ApiError extends Error {
  /** The HTTP status (0: the request did not get an answer). */
  readonly status: number;
  /** The machine-readable code (`NOT_FOUND`, `KEY_BUSY`, …; `NETWORK` for no answer). */
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
  override get name(): string {
    return 'ApiError';
  }
}

/** Called when the API answers 401: the page asks for a token again. */
let onUnauthorized: (() => void) | undefined;

/** Sets what happens when the API refuses the token. */
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

/** The request headers of every call (the token, when there is one). */
export function authHeaders(token = getToken()): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Builds an API URL from encoded path segments and a query. */
export function apiUrl(
  segments: readonly string[],
  query?: Record<string, string | undefined>,
): URL {
  // A URL parser resolves `.` and `..` (also percent-encoded): such a name would reach another route.
  if (segments.some((s) => s === '.' || s === '..'))
    throw new ApiError(400, 'INVALID_PATH', 'a name "." or ".." cannot be sent in a URL path');
  const url = new URL(segments.map(encodeURIComponent).join('/'), API_BASE);
  for (const [k, v] of Object.entries(query ?? {})) if (v) url.searchParams.set(k, v);
  return url;
}

/** Reads a refusal's body into an {@link ApiError}. */
async function refusal(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { code?: unknown; errorCode?: unknown; message?: unknown };
    // The ingress's error shape `{ code: status, errorCode, message }`, or `{ code, message }`.
    if (typeof body.errorCode === 'string') code = body.errorCode;
    else if (typeof body.code === 'string') code = body.code;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(res.status, code, message);
}

/** Options of {@link api}. */
export interface CallOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  query?: Record<string, string | undefined>;
  /** A JSON body (sent as `application/json`). */
  body?: unknown;
  /** The token to use instead of the tab's (the token form checks a new one). */
  token?: string;
  signal?: AbortSignal;
}

/**
 * Calls the admin API and returns its JSON answer; throws an {@link ApiError} for any refusal
 * (401 also calls the handler set by {@link whenUnauthorized}, unless a token was given).
 */
export async function api<T>(segments: readonly string[], o: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = authHeaders(o.token ?? getToken());
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(apiUrl(segments, o.query), {
      method: o.method ?? 'GET',
      headers,
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      cache: 'no-store',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', `the admin API did not answer: ${(e as Error).message}`);
  }
  if (!res.ok) {
    const err = await refusal(res);
    if (res.status === 401 && o.token === undefined) onUnauthorized?.();
    throw err;
  }
  const text = await res.text();
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** Whether a failure says the route does not exist (a server without that part of the API). */
export function isMissingRoute(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404 && /no admin route/i.test(e.message);
}
