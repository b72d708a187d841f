import type { z } from 'zod';

/**
 * A validating codec for handler input or output. Handlers take JSON; a
 * zod schema (passed directly or wrapped with {@link serde.zod}) validates it.
 */
export interface Serde<T> {
  readonly kind: 'json' | 'zod';
  /** Validates a decoded JSON value; throws {@link SerdeValidationError}. */
  parse(value: unknown): T;
  /** The zod schema, for `kind: 'zod'`. */
  readonly schema?: z.ZodType<T>;
}

/** A payload failed its schema; `issues` lists what is wrong, zod's way. */
export class SerdeValidationError extends Error {
  readonly issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string; code?: string }>;
  constructor(message: string, issues: SerdeValidationError['issues']) {
    super(message);
    this.issues = issues;
  }
  override get name(): string {
    return 'SerdeValidationError';
  }
}

function zodSerde<T>(schema: z.ZodType<T>): Serde<T> {
  return {
    kind: 'zod',
    schema,
    parse(value: unknown): T {
      const res = schema.safeParse(value);
      if (res.success) return res.data;
      const issues = res.error.issues.map((i) => ({ path: i.path, message: i.message, code: i.code }));
      const text = issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new SerdeValidationError(`invalid payload: ${text}`, issues);
    },
  };
}

const jsonSerde: Serde<unknown> = { kind: 'json', parse: (v) => v };

/** Codecs for handler payloads, named as in Restate's SDK. */
export const serde = {
  /** Plain JSON, no validation (the default). */
  json: jsonSerde,
  /** Validates with a zod schema. */
  zod: zodSerde,
};

/** Accepts a `Serde` or a bare zod schema. */
export function toSerde(s: unknown): Serde<unknown> | undefined {
  if (s === undefined || s === null) return undefined;
  if (typeof s === 'object' && 'kind' in s && 'parse' in s) return s as Serde<unknown>;
  if (typeof s === 'object' && 'safeParse' in s) return zodSerde(s as z.ZodType<unknown>);
  throw new TypeError('input/output must be a zod schema or a serde');
}
