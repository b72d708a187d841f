/**
 * A push deployment as a `node:http` / `node:http2` (compatibility API) request handler, the
 * `createEndpointHandler` of `@latchkey/core`. Bodies are read as the ingress reads them
 * (`readBody`): within the size limit, in 30 s, and within a cap on what all unfinished bodies hold.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { BodyBudget, readBody, type BodyLimits } from '../ingress/body.js';
import { answerFailure } from '../ingress/http-base.js';
import { createPushEndpoint, type EndpointHandlerOptions } from './endpoint.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

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
  const limits: BodyLimits = {
    maxBodyBytes: endpoint.maxBodyBytes,
    bodyTimeoutMs: 30_000,
    maxBufferedBodyBytes: Math.max(128 * 1024 * 1024, endpoint.maxBodyBytes),
  };
  const budget = new BodyBudget(limits.maxBufferedBodyBytes);
  const logger = options.logger ?? console;
  return (r, s) => {
    // The compatibility API's request and response are used as node:http's are.
    const req = r as IncomingMessage;
    const res = s as ServerResponse;
    void (async () => {
      const body = await readBody(req, limits, budget);
      const answer = await endpoint({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        header: (n) => {
          const v = req.headers[n.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        body: body.toString('utf8'),
      });
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    })().catch((e: unknown) => answerFailure(req, res, e, logger));
  };
}
