/**
 * The OpenAPI 3.1 document of the HTTP ingress (`GET /openapi.json` on the admin port): for every
 * handler a client may reach (not `ingressPrivate`), its call route `POST /{service}/{key?}/{handler}`
 * and its send route `.../send` (with `?delay=` and the `idempotency-key` header), and for a
 * workflow its `attach` and `output` routes by workflow key. Payload schemas are the handlers' own
 * (see `define/json-schema.ts`). The routes are those of `http.ts`; the `/restate/call/…` and
 * `/restate/send/…` forms of the same routes are aliases the document names in its description.
 */
import type { AnyDefinition, HandlerSpec } from '../define/definitions.js';
import { contentTypeOf, jsonSchemaOf, type JsonSchema } from '../define/json-schema.js';

/** The dialect of every schema in the document (JSON Schema 2020-12, OpenAPI 3.1's), stated once at the root. */
const DIALECT = 'https://json-schema.org/draft/2020-12/schema';

const ERROR = { $ref: '#/components/responses/Error' };

function schema(s: JsonSchema): JsonSchema {
  const { $schema: _dialect, ...rest } = s;
  return rest;
}

function requestBody(spec: HandlerSpec): object | undefined {
  const type = contentTypeOf(spec.input);
  if (type === undefined) return undefined;
  return {
    required: false,
    content: { [type]: { schema: schema(jsonSchemaOf(spec.input, 'input')) } },
  };
}

function resultResponse(spec: HandlerSpec, description: string): object {
  const type = contentTypeOf(spec.output);
  return type === undefined
    ? { description }
    : { description, content: { [type]: { schema: schema(jsonSchemaOf(spec.output, 'output')) } } };
}

function keyParam(def: AnyDefinition): object[] {
  if (def.kind === 'service') return [];
  const what = def.kind === 'workflow' ? 'workflow id' : 'object key';
  return [
    {
      name: 'key',
      in: 'path',
      required: true,
      description: `The ${what}.`,
      schema: { type: 'string' },
    },
  ];
}

function describe(spec: HandlerSpec): Record<string, string> {
  return spec.description !== undefined ? { description: spec.description } : {};
}

function pathItems(def: AnyDefinition, spec: HandlerSpec): Record<string, object> {
  const base =
    def.kind === 'service' ? `/${def.name}/${spec.name}` : `/${def.name}/{key}/${spec.name}`;
  const params = keyParam(def);
  const body = requestBody(spec);
  const tags = [def.name];
  const run = spec.mode === 'workflow';
  const call = {
    post: {
      operationId: `${def.name}.${spec.name}`,
      summary: run
        ? `Run workflow ${def.name} once for this id and wait for its result`
        : `Call ${def.name}.${spec.name} and wait for its result`,
      ...describe(spec),
      tags,
      parameters: [...params, { $ref: '#/components/parameters/IdempotencyKey' }],
      ...(body ? { requestBody: body } : {}),
      responses: {
        '200': resultResponse(spec, 'The handler returned: its output.'),
        '400': ERROR,
        '404': ERROR,
        '409': ERROR,
        default: ERROR,
      },
    },
  };
  const send = {
    post: {
      operationId: `${def.name}.${spec.name}.send`,
      summary: run
        ? `Submit workflow ${def.name} for this id (once per id)`
        : `Send to ${def.name}.${spec.name} without waiting`,
      ...describe(spec),
      tags,
      parameters: [
        ...params,
        { $ref: '#/components/parameters/IdempotencyKey' },
        { $ref: '#/components/parameters/Delay' },
      ],
      ...(body ? { requestBody: body } : {}),
      responses: {
        '202': {
          description:
            'Accepted (or previously accepted, for a repeated idempotency key or workflow id).',
          headers: { 'x-restate-id': { $ref: '#/components/headers/InvocationId' } },
          content: {
            'application/json': { schema: { $ref: '#/components/schemas/SendResponse' } },
          },
        },
        '400': ERROR,
        '404': ERROR,
        default: ERROR,
      },
    },
  };
  const items: Record<string, object> = { [base]: call, [`${base}/send`]: send };
  if (run) {
    const wfParams = keyParam(def);
    items[`/restate/workflow/${def.name}/{key}/attach`] = {
      get: {
        operationId: `${def.name}.attach`,
        summary: `Wait for the result of workflow ${def.name} with this id`,
        tags,
        parameters: wfParams,
        responses: {
          '200': resultResponse(spec, 'The workflow ended: its output.'),
          '404': ERROR,
          default: ERROR,
        },
      },
    };
    items[`/restate/workflow/${def.name}/{key}/output`] = {
      get: {
        operationId: `${def.name}.output`,
        summary: `The result of workflow ${def.name} with this id, if it has ended (470 otherwise)`,
        tags,
        parameters: wfParams,
        responses: {
          '200': resultResponse(spec, 'The workflow ended: its output.'),
          '404': ERROR,
          '470': ERROR,
          default: ERROR,
        },
      },
    };
  }
  return items;
}

const COMPONENTS = {
  parameters: {
    IdempotencyKey: {
      name: 'idempotency-key',
      in: 'header',
      required: false,
      description:
        'Dedupes the request per (service, key, handler) for the idempotency retention (default 24 h): a repeat latches on to the first invocation.',
      schema: { type: 'string', maxLength: 1024 },
    },
    Delay: {
      name: 'delay',
      in: 'query',
      required: false,
      description:
        "Start the invocation later: milliseconds, `10s`/`5m`/`250ms`, or ISO 8601 (`PT10S`); at most the ingress's `maxDelay` (default 365 days).",
      schema: { type: 'string' },
    },
  },
  headers: {
    InvocationId: { description: 'The invocation id.', schema: { type: 'string' } },
  },
  schemas: {
    SendResponse: {
      type: 'object',
      required: ['invocationId', 'status'],
      properties: {
        invocationId: { type: 'string' },
        status: { enum: ['Accepted', 'PreviouslyAccepted'] },
      },
    },
    Error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'integer', description: 'The HTTP status.' },
        errorCode: { type: 'string', description: 'A stable machine-readable code.' },
        message: { type: 'string' },
      },
    },
  },
  responses: {
    Error: {
      description:
        '400 bad input, 404 unknown target, 409 conflict (a workflow run again, a killed or cancelled invocation), 470 not ready yet.',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    },
  },
};

/** Builds the OpenAPI 3.1 document of the ingress routes of these definitions. */
export function openApiDocument(
  services: ReadonlyArray<{ def: AnyDefinition; handlers: readonly HandlerSpec[] }>,
): object {
  const paths: Record<string, object> = {};
  for (const { def, handlers } of services) {
    for (const spec of handlers) {
      if (spec.options.ingressPrivate) continue;
      Object.assign(paths, pathItems(def, spec));
    }
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: DIALECT,
    info: {
      title: 'Latchkey ingress',
      version: '1',
      description:
        "The HTTP ingress's routes for the handlers this process serves (Restate's ingress protocol). Each call route is also served as `/restate/call/…` and each send route as `/restate/send/…` (without the `/send` suffix); `/restate/invocation/{id}/attach|output` reach any invocation by id.",
    },
    tags: services.map(({ def }) => ({
      name: def.name,
      ...(def.description !== undefined ? { description: def.description } : {}),
    })),
    paths,
    components: COMPONENTS,
  };
}
