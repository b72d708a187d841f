/**
 * `@latchkey/core/fetch`: handlers on fetch runtimes (Cloudflare Workers, Deno, Bun, Vercel,
 * Node's `Request`/`Response`), as Restate's `@restatedev/restate-sdk/fetch`.
 *
 * @example
 * ```ts
 * import { createEndpointHandler } from '@latchkey/core/fetch';
 * export default { fetch: createEndpointHandler({ services: [greeter] }) };
 * ```
 */
import { ErrorCode } from './errors.js';
import { createPushEndpoint, type EndpointHandlerOptions } from './push/endpoint.js';

export type { EndpointHandlerOptions } from './push/endpoint.js';

/**
 * A push deployment as a fetch handler: register its URL with an engine (`POST /deployments` on
 * the admin API, `serve({ deployments })` or `latchkey deployments add`).
 */
export function createEndpointHandler(
  options: EndpointHandlerOptions,
): (request: Request) => Promise<Response> {
  const endpoint = createPushEndpoint(options);
  return async (request) => {
    const length = Number(request.headers.get('content-length') ?? 0);
    if (length > endpoint.maxBodyBytes) return tooLarge();
    const body = request.method === 'POST' ? await bounded(request, endpoint.maxBodyBytes) : '';
    if (body === undefined) return tooLarge();
    try {
      const res = await endpoint({
        method: request.method,
        path: new URL(request.url).pathname,
        header: (n) => request.headers.get(n) ?? undefined,
        body,
      });
      return new Response(res.body, { status: res.status, headers: res.headers });
    } catch (e) {
      return Response.json(
        {
          code: 500,
          errorCode: ErrorCode.INTERNAL,
          message: e instanceof Error ? e.message : String(e),
        },
        { status: 500 },
      );
    }
  };
}

/** The body as text, read no further than `max` bytes (undefined beyond: a chunked body too). */
async function bounded(request: Request, max: number): Promise<string | undefined> {
  if (!request.body) return '';
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next: { done: boolean; value?: Uint8Array } = await reader.read();
    const value = next.value;
    if (next.done || !value) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(): Response {
  return Response.json(
    { code: 413, errorCode: ErrorCode.BODY_TOO_LARGE, message: 'the request body is too large' },
    { status: 413 },
  );
}
