/**
 * A push deployment as a `node:http` / `node:http2` (compatibility API) request handler, the
 * `createEndpointHandler` of `@latchkey/core`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { ErrorCode } from '../errors.js';
import { createPushEndpoint, type EndpointHandlerOptions } from './endpoint.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

function send(res: Res, status: number, headers: Record<string, string>, body: string): void {
  (res as ServerResponse).writeHead(status, headers);
  (res as ServerResponse).end(body);
}

/**
 * A push deployment as a request handler for `http.createServer` (or `http2.createServer`):
 * register its URL with an engine (`POST /deployments` on the admin API, `serve({ deployments })`
 * or `latchkey deployments add`).
 *
 * @example
 * ```ts
 * http.createServer(createEndpointHandler({ services: [greeter] })).listen(9080);
 * ```
 */
export function createEndpointHandler(
  options: EndpointHandlerOptions,
): (req: Req, res: Res) => void {
  const endpoint = createPushEndpoint(options);
  const fail = (res: Res, status: number, errorCode: string, message: string): void =>
    send(
      res,
      status,
      { 'content-type': 'application/json' },
      JSON.stringify({ code: status, errorCode, message }),
    );
  return (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > endpoint.maxBodyBytes) {
        if (!over) fail(res, 413, ErrorCode.BODY_TOO_LARGE, 'the request body is too large');
        over = true;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return;
      endpoint({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        header: (n) => {
          const v = req.headers[n.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        body: Buffer.concat(chunks).toString('utf8'),
      }).then(
        (r) => send(res, r.status, r.headers, r.body),
        (e: unknown) =>
          fail(res, 500, ErrorCode.INTERNAL, e instanceof Error ? e.message : String(e)),
      );
    });
    req.on('error', () => res.destroy?.());
  };
}
