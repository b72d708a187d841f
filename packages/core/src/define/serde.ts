import type { z } from 'zod';

/**
 * A payload codec, as in Restate's SDK (`serde.json`, `serde.binary`, `serde.empty`,
 * `serde.schema(...)`, or your own object): how a value becomes bytes with a content type, and
 * back. Handlers take and return JSON unless their `input`/`output` option names another serde.
 *
 * @example
 * ```ts
 * const files = service({
 *   name: 'files',
 *   handlers: {
 *     // POST /files/checksum with any bytes (application/octet-stream); the answer is bytes too.
 *     checksum: handlers.handler({ input: serde.binary, output: serde.binary }, async (_ctx: Context, data: Uint8Array) => sha256(data)),
 *   },
 * });
 * ```
 */
export interface Serde<T> {
  /** The content type of the bytes (`application/json` for JSON; absent for no payload). */
  readonly contentType?: string;
  /** A JSON Schema of the value, when the serde has one. */
  readonly jsonSchema?: object;
  /** The value as bytes. */
  serialize(value: T): Uint8Array;
  /** The value from bytes; throws {@link SerdeValidationError} when they are not a valid value. */
  deserialize(data: Uint8Array): T;
}

/** A payload failed its schema; `issues` lists what is wrong, zod's way. */
export class SerdeValidationError extends Error {
  readonly issues: ReadonlyArray<{
    path: ReadonlyArray<PropertyKey>;
    message: string;
    code?: string;
  }>;
  constructor(message: string, issues: SerdeValidationError['issues']) {
    super(message);
    this.issues = issues;
  }
  override get name(): string {
    return 'SerdeValidationError';
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * A JSON serde that checks values with `check` (a zod schema's, a Standard Schema's): the ingress
 * validates input with it before accepting an invocation (400 otherwise), and the handler
 * receives what it returns.
 */
export interface JsonSerde<T> extends Serde<T> {
  readonly contentType: 'application/json';
  /**
   * The zod schema or Standard Schema the serde checks with, when it was made from one: kept so
   * the admin API can describe the payload (its JSON Schema, through zod's `toJSONSchema`).
   */
  readonly schema?: unknown;
  /** Checks (and may transform) a decoded JSON value; throws {@link SerdeValidationError}. */
  check(value: unknown): T;
}

function jsonSerde<T>(check: (value: unknown) => T, jsonSchema?: object): JsonSerde<T> {
  return {
    contentType: 'application/json',
    ...(jsonSchema !== undefined ? { jsonSchema } : {}),
    check,
    serialize: (value) => utf8.encode(value === undefined ? '' : JSON.stringify(value)),
    deserialize: (data) => {
      const text = fromUtf8.decode(data);
      return check(text === '' ? undefined : (JSON.parse(text) as unknown));
    },
  };
}

function invalid(issues: SerdeValidationError['issues']): SerdeValidationError {
  const text = issues
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return new SerdeValidationError(`invalid payload: ${text}`, issues);
}

function zodSerde<T>(schema: z.ZodType<T>): JsonSerde<T> {
  const serde = jsonSerde((value) => {
    const res = schema.safeParse(value);
    if (res.success) return res.data;
    throw invalid(
      res.error.issues.map((i) => ({ path: i.path, message: i.message, code: i.code })),
    );
  });
  return { ...serde, schema };
}

/** A Standard Schema validator (zod 4, valibot, arktype, …), as far as a serde needs one. */
interface StandardSchema<T> {
  readonly '~standard': {
    validate(value: unknown):
      | { value: T; issues?: undefined }
      | {
          issues: ReadonlyArray<{
            message: string;
            path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
          }>;
        }
      | Promise<unknown>;
  };
}

function standardSerde<T>(schema: StandardSchema<T>): JsonSerde<T> {
  const serde = jsonSerde((value) => {
    const res = schema['~standard'].validate(value);
    if (res instanceof Promise) throw new TypeError('serde.schema needs a synchronous schema');
    const r = res as {
      value?: T;
      issues?: ReadonlyArray<{
        message: string;
        path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
      }>;
    };
    if (!r.issues) return r.value as T;
    throw invalid(
      r.issues.map((i) => ({
        path: (i.path ?? []).map((p) => (typeof p === 'object' ? p.key : p)),
        message: i.message,
      })),
    );
  });
  return { ...serde, schema };
}

const binarySerde: Serde<Uint8Array> = {
  contentType: 'application/octet-stream',
  serialize: (value) => {
    if (!(value instanceof Uint8Array)) throw new TypeError('serde.binary serializes a Uint8Array');
    return value;
  },
  deserialize: (data) => data,
};

const emptySerde: Serde<void> = {
  serialize: () => new Uint8Array(0),
  deserialize: () => undefined,
};

/** Codecs for payloads, named as in Restate's SDK. */
export const serde = {
  /** Plain JSON, no validation (the default). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- usable as the serde of any type
  json: jsonSerde<unknown>((v) => v) as JsonSerde<any>,
  /** Raw bytes (`application/octet-stream`): the handler takes and returns a `Uint8Array`. */
  binary: binarySerde,
  /** No payload. */
  empty: emptySerde,
  /** JSON validated with a zod schema. */
  zod: zodSerde,
  /** JSON validated with a Standard Schema (zod 4 schemas are ones). */
  schema<T>(schema: StandardSchema<T> | z.ZodType<T>): JsonSerde<T> {
    return 'safeParse' in schema ? zodSerde(schema) : standardSerde(schema);
  },
};

/** Accepts a `Serde`, a zod schema or a Standard Schema. */
export function toSerde(s: unknown): Serde<unknown> | undefined {
  if (s === undefined || s === null) return undefined;
  if (typeof s === 'object' && 'serialize' in s && 'deserialize' in s) return s as Serde<unknown>;
  if (typeof s === 'object' && 'safeParse' in s) return zodSerde(s as z.ZodType<unknown>);
  if (typeof s === 'object' && '~standard' in s) return standardSerde(s as StandardSchema<unknown>);
  throw new TypeError('input/output must be a serde, a zod schema or a Standard Schema');
}

/**
 * True for Latchkey's own JSON serdes (none, `serde.json`, a schema's): their payloads are kept as
 * JSON text and checked as values. Any other serde — a custom one too, whatever its content type —
 * is used through its own `serialize`/`deserialize`, its bytes kept in base64.
 */
export function isJson(s: Serde<unknown> | undefined): boolean {
  return s === undefined || 'check' in s;
}

/** The check of a JSON serde (validation before acceptance), if it has one. */
export function checkOf(s: Serde<unknown> | undefined): ((value: unknown) => unknown) | undefined {
  if (s === undefined || !('check' in s)) return undefined;
  const json = s as JsonSerde<unknown>;
  return (value) => json.check(value);
}

/**
 * How a payload is kept (in Redis, in a journal's completions): the JSON text for a JSON serde,
 * else the bytes in base64. The handler's serde tells which, so nothing in the text marks it.
 */
export function storedOf(s: Serde<unknown> | undefined, bytes: Uint8Array): string {
  return isJson(s)
    ? fromUtf8.decode(bytes)
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The bytes of a kept payload (see {@link storedOf}). */
export function bytesOf(s: Serde<unknown> | undefined, stored: string): Uint8Array {
  return isJson(s) ? utf8.encode(stored) : new Uint8Array(Buffer.from(stored, 'base64'));
}

/** A kept payload decoded by its serde (a JSON one checks the value; an empty text is no value). */
export function decodeStored(s: Serde<unknown> | undefined, stored: string): unknown {
  if (isJson(s)) {
    const value = stored === '' ? undefined : (JSON.parse(stored) as unknown);
    const check = checkOf(s);
    return check ? check(value) : value;
  }
  return s!.deserialize(bytesOf(s, stored));
}

/** A value encoded by its serde as it is kept (undefined: no value, for a JSON serde). */
export function encodeStored(s: Serde<unknown> | undefined, value: unknown): string | undefined {
  if (isJson(s)) {
    const check = checkOf(s);
    const v = check ? check(value) : value;
    return v === undefined ? undefined : JSON.stringify(v);
  }
  return storedOf(s, s!.serialize(value));
}
