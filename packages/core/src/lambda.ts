/**
 * `@latchkey/core/lambda`: handlers on AWS Lambda (function URLs, API Gateway REST and HTTP APIs),
 * as Restate's `@restatedev/restate-sdk/lambda`.
 *
 * @example
 * ```ts
 * import { createEndpointHandler } from '@latchkey/core/lambda';
 * export const handler = createEndpointHandler({ services: [greeter] });
 * ```
 */
import { ErrorCode } from './errors.js';
import { createPushEndpoint, type EndpointHandlerOptions } from './push/endpoint.js';

export type { EndpointHandlerOptions } from './push/endpoint.js';

/** The fields of an API Gateway (v1 or v2) or function URL event that a deployment reads. */
export interface LambdaEvent {
  /** v2 and function URLs. */
  rawPath?: string;
  /** v1. */
  path?: string;
  /** v1. */
  httpMethod?: string;
  /** v2 and function URLs: `http.method`; v1: `path`, the path with its stage (as signed). */
  requestContext?: { http?: { method?: string }; path?: string };
  headers?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** What the handler returns: an API Gateway proxy result. */
export interface LambdaResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: false;
}

/** A push deployment as a Lambda handler (register the function URL with the engine). */
export function createEndpointHandler(
  options: EndpointHandlerOptions,
): (event: LambdaEvent, context?: unknown) => Promise<LambdaResult> {
  const endpoint = createPushEndpoint(options);
  return async (event) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(event.headers ?? {})) {
      if (v !== undefined) headers[k.toLowerCase()] = v;
    }
    const raw = event.body ?? '';
    const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    if (Buffer.byteLength(body) > endpoint.maxBodyBytes) {
      return result(413, {
        code: 413,
        errorCode: ErrorCode.BODY_TOO_LARGE,
        message: 'the request body is too large',
      });
    }
    try {
      const res = await endpoint({
        method: event.requestContext?.http?.method ?? event.httpMethod ?? 'GET',
        // The path the engine requested (and signed): a REST API's `event.path` lacks the stage.
        path: event.rawPath ?? event.requestContext?.path ?? event.path ?? '/',
        header: (n) => headers[n.toLowerCase()],
        body,
      });
      return {
        statusCode: res.status,
        headers: res.headers,
        body: res.body,
        isBase64Encoded: false,
      };
    } catch (e) {
      return result(500, {
        code: 500,
        errorCode: ErrorCode.INTERNAL,
        message: e instanceof Error ? e.message : String(e),
      });
    }
  };
}

function result(statusCode: number, body: unknown): LambdaResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}
