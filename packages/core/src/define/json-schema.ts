/**
 * JSON Schema of a handler's payload, from the schema its serde was made of: a zod schema through
 * zod's own `z.toJSONSchema`, a Standard Schema through its Standard JSON Schema converter (when it
 * has one), a serde's own `jsonSchema`, else `{}` (any value). Used by the admin API's services
 * routes and its OpenAPI document.
 */
import { z } from 'zod';
import { isJson, type Serde } from './serde.js';

/** A JSON Schema document (draft 2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

/** Whether the payload described is the input (what a client sends) or the output of a handler. */
export type SchemaSide = 'input' | 'output';

function isZod(schema: unknown): schema is z.core.$ZodType {
  return typeof schema === 'object' && schema !== null && '_zod' in schema;
}

interface StandardJsonSchema {
  '~standard': {
    jsonSchema?: {
      input?: (o: { target: string }) => Record<string, unknown>;
      output?: (o: { target: string }) => Record<string, unknown>;
    };
  };
}

function standardJsonSchema(schema: unknown, side: SchemaSide): JsonSchema | undefined {
  if (typeof schema !== 'object' || schema === null || !('~standard' in schema)) return undefined;
  const convert = (schema as StandardJsonSchema)['~standard'].jsonSchema?.[side];
  return typeof convert === 'function' ? convert({ target: 'draft-2020-12' }) : undefined;
}

/**
 * The JSON Schema of the values a serde carries on `side` (`input`: what a client may send, before
 * defaults and transforms; `output`: what the handler answers). `{}` when the serde takes any JSON
 * value, has no schema, or carries bytes (see {@link contentTypeOf}); a schema zod cannot express
 * (a transform's output, a date) becomes `{}` where it appears.
 */
export function jsonSchemaOf(s: Serde<unknown> | undefined, side: SchemaSide): JsonSchema {
  if (s === undefined || !isJson(s)) return s?.jsonSchema ? { ...s.jsonSchema } : {};
  const schema = (s as { schema?: unknown }).schema;
  try {
    if (isZod(schema)) {
      return z.toJSONSchema(schema, { io: side, unrepresentable: 'any' });
    }
    const standard = standardJsonSchema(schema, side);
    if (standard) return standard;
  } catch {
    // A schema that cannot be described (a cycle zod refuses, a converter that throws) takes any
    // value as far as a reader can tell; the handler's own check still applies.
    return {};
  }
  return s.jsonSchema ? { ...s.jsonSchema } : {};
}

/**
 * The content type of a serde's payload: `application/json` for JSON (the default), the serde's
 * own for bytes (`application/octet-stream` for `serde.binary`), undefined for no payload
 * (`serde.empty`).
 */
export function contentTypeOf(s: Serde<unknown> | undefined): string | undefined {
  if (s === undefined || isJson(s)) return 'application/json';
  return s.contentType;
}
