/**
 * What every HTTP port of Latchkey shares (the public ingress, the admin API): splitting request
 * targets, JSON answers, and answering failures without leaking internals.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { discardRest } from './body.js';
import { IngressError, clientError, internalError } from '../errors.js';

/** Sends a JSON answer (`id`: the `x-restate-id` header). */
export function send(
  res: ServerResponse,
  status: number,
  body: string | undefined,
  id?: string,
): void {
  if (res.headersSent) return;
  // With its length known up front, Node sends the head and the body in one write (no chunked framing).
  const length = body === undefined ? 0 : Buffer.byteLength(body);
  res.writeHead(
    status,
    id === undefined
      ? { 'content-type': 'application/json', 'content-length': length }
      : { 'content-type': 'application/json', 'content-length': length, 'x-restate-id': id },
  );
  res.end(body);
}

/** Sends bytes with a content type (a handler whose output serde is not JSON). */
export function sendBytes(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: Uint8Array,
  id: string,
): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': body.byteLength,
    'x-restate-id': id,
  });
  res.end(body);
}

/** Sends a JSON value (the admin API's answers). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value));
}

/** Answers an {@link IngressError}: its body `{code, errorCode, message, ...extra}`. */
export function sendError(res: ServerResponse, e: IngressError): void {
  if (res.headersSent) return;
  const retryAfter = e.extra['retryAfter'];
  if (typeof retryAfter === 'number') res.setHeader('retry-after', String(retryAfter));
  send(res, e.status, JSON.stringify(e.body()));
}

/**
 * Answers any failure of a request: an {@link IngressError} as it says (then discards or drops the
 * rest of a refused body), a wiped Redis as 503, anything else as a 500 whose message names no
 * internals (the details go to the log).
 */
export function answerFailure(
  req: IncomingMessage,
  res: ServerResponse,
  e: unknown,
  logger: Pick<Console, 'error'> | undefined,
): void {
  if ((e as { name?: string } | null)?.name === 'AbortError') return;
  const err = clientError(e);
  if (!err) {
    logger?.error(`[latchkey] ingress error: ${(e as Error).stack ?? String(e)}`);
    sendError(res, internalError());
    return;
  }
  sendError(res, err);
  if (err.status === 413 || err.status === 503) discardRest(req);
  else if (err.status === 408) discardRest(req, true);
}

/** A path the WHATWG URL parser would change: dot segments (also percent-encoded), backslashes. */
const NEEDS_URL_PARSER = /\/\.|%2e|\\/i;

/**
 * Splits a request target into its path segments and its query. Plain paths (the hot path) are
 * split as they are; one with dot segments or backslashes goes through the WHATWG URL parser,
 * which resolves them as it always did here.
 */
export function parseTarget(raw: string): {
  pathname: string;
  segs: string[];
  query: URLSearchParams | undefined;
} {
  const h = raw.indexOf('#');
  const target = h >= 0 ? raw.slice(0, h) : raw;
  const q = target.indexOf('?');
  let pathname = q >= 0 ? target.slice(0, q) : target;
  let search = q >= 0 ? target.slice(q + 1) : '';
  if (!pathname.startsWith('/') || NEEDS_URL_PARSER.test(pathname)) {
    let url: URL;
    try {
      url = new URL(raw, 'http://ingress');
    } catch {
      throw new IngressError(400, 'INVALID_PATH', 'malformed request target');
    }
    pathname = url.pathname;
    search = url.search.slice(1);
  }
  const segs = pathname.split('/').filter((s) => s.length > 0);
  return { pathname, segs, query: search === '' ? undefined : new URLSearchParams(search) };
}

export function decode(seg: string): string {
  if (!seg.includes('%')) return seg;
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new IngressError(
      400,
      'INVALID_PATH',
      `malformed percent-encoding in ${JSON.stringify(seg)}`,
    );
  }
}
