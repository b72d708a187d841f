/**
 * Errors that carry Latchkey's retry semantics, as in Restate's SDK:
 * a {@link TerminalError} is never retried and becomes the result; any other
 * thrown value fails the attempt, which is retried with backoff.
 *
 * As in Restate, an error's `code` is a number, HTTP-style (a `TerminalError` 500 unless given, a
 * `CancelledError` 409, a `TimeoutError` 408); Latchkey's machine-readable kind of error
 * (`TERMINAL`, `CANCELLED`, `FENCED`, …; see {@link ErrorCode}) is its `kind`.
 *
 * Guards (`isTerminalError`, …) use `Symbol.for` brands so they keep working when two copies of
 * this package are loaded.
 */

import { ErrorCode } from './error-codes.js';

export { ErrorCode } from './error-codes.js';

const BRAND = Symbol.for('latchkey.error');
const TERMINAL = Symbol.for('latchkey.TerminalError');
const RETRYABLE = Symbol.for('latchkey.RetryableError');
const NON_DETERMINISM = Symbol.for('latchkey.NonDeterminismError');
const PAUSE = Symbol.for('latchkey.PauseError');

/** Base class of every error Latchkey itself raises. */
export class DurableError extends Error {
  readonly [BRAND] = true;
  /** A stable machine-readable kind (see {@link ErrorCode}). */
  readonly kind: ErrorCode;
  /** An HTTP-style status code (Restate's `code`); 500 unless the error says otherwise. */
  readonly code: number;
  constructor(message: string, kind: ErrorCode, options?: { cause?: unknown; code?: number }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.kind = kind;
    this.code = options?.code ?? 500;
  }
  override get name(): string {
    return 'DurableError';
  }
}

/** Options of a {@link TerminalError}. */
export interface TerminalErrorOptions {
  /** HTTP-style status reported to the caller; defaults to 500. */
  errorCode?: number;
  /** Free-form metadata, journaled with the error. */
  metadata?: Record<string, string>;
  cause?: unknown;
}

/**
 * A failure that is final: it is never retried, it is journaled, and it
 * reaches the caller (a parent handler gets a `TerminalError` too).
 *
 * @example
 * ```ts
 * if (amount < 0) throw new TerminalError('amount must be positive', { errorCode: 400 });
 * ```
 */
export class TerminalError extends DurableError {
  readonly [TERMINAL] = true;
  /** Free-form metadata (string → string), journaled with the error and reported to callers. */
  readonly metadata: Record<string, string> | undefined;
  constructor(
    message: string,
    options: TerminalErrorOptions = {},
    kind: ErrorCode = ErrorCode.TERMINAL,
  ) {
    super(message, kind, { cause: options.cause, code: options.errorCode ?? 500 });
    this.metadata = options.metadata;
  }
  /** The same as `code` (the option that sets it is named `errorCode`, as in Restate). */
  get errorCode(): number {
    return this.code;
  }
  override get name(): string {
    return 'TerminalError';
  }
}

/** Raised at the next await of a cancelled invocation (Restate code 409). */
export class CancelledError extends TerminalError {
  constructor(message = 'Cancelled') {
    super(message, { errorCode: 409 }, ErrorCode.CANCELLED);
  }
  override get name(): string {
    return 'CancelledError';
  }
}

/** Raised when a durable timeout expires (Restate code 408). */
export class TimeoutError extends TerminalError {
  constructor(message = 'Timeout occurred') {
    super(message, { errorCode: 408 }, ErrorCode.TIMEOUT);
  }
  override get name(): string {
    return 'TimeoutError';
  }
}

/**
 * A failure that should be retried, optionally not before `retryAfter`
 * milliseconds. Any other non-terminal error is retried too; this class only
 * adds the delay hint.
 */
export class RetryableError extends DurableError {
  readonly [RETRYABLE] = true;
  readonly retryAfter: number | undefined;
  constructor(message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, ErrorCode.RETRYABLE, { cause: options.cause });
    this.retryAfter = options.retryAfter;
  }
  override get name(): string {
    return 'RetryableError';
  }
  /** Wraps a failure (any thrown value) to retry, optionally not before `retryAfter` ms (Restate's `RetryableError.from`). */
  static from(cause: unknown, options: { retryAfter?: number } = {}): RetryableError {
    return new RetryableError(ensureError(cause).message, { ...options, cause });
  }
}

/**
 * Pauses the invocation at once instead of retrying it (as Restate's `PauseError`):
 * it keeps its journal and its key, and continues from there when resumed (admin API).
 */
export class PauseError extends DurableError {
  readonly [PAUSE] = true;
  constructor(message = 'paused by the handler', options: { cause?: unknown } = {}) {
    super(message, ErrorCode.PAUSED, options);
  }
  override get name(): string {
    return 'PauseError';
  }
}

/** True for {@link PauseError}, from any package copy. */
export function isPauseError(e: unknown): e is PauseError {
  return typeof e === 'object' && e !== null && PAUSE in e;
}

/** What a replay expected or met at one journal index. */
export interface JournalEntryDescription {
  kind: string;
  name?: string | undefined;
}

/**
 * Replay diverged from the journal: the handler asked for something other than
 * what was recorded at `index`. Nothing of the attempt is committed.
 */
export class NonDeterminismError extends DurableError {
  readonly [NON_DETERMINISM] = true;
  /** The journal index where replay diverged. */
  readonly index: number;
  /** What the journal holds at `index`. */
  readonly expected: JournalEntryDescription;
  /** What the handler asked for instead. */
  readonly actual: JournalEntryDescription;
  constructor(index: number, expected: JournalEntryDescription, actual: JournalEntryDescription) {
    super(
      `Non-determinism at journal index ${index}: expected ${describeEntry(expected)}, actual ${describeEntry(actual)}`,
      ErrorCode.NON_DETERMINISM,
      // Restate's code for a journal mismatch.
      { code: 570 },
    );
    this.index = index;
    this.expected = expected;
    this.actual = actual;
  }
  override get name(): string {
    return 'NonDeterminismError';
  }
}

function describeEntry(e: JournalEntryDescription): string {
  return e.name === undefined ? e.kind : `${e.kind}(${JSON.stringify(e.name)})`;
}

/** True for {@link TerminalError} and its subclasses, from any package copy. */
export function isTerminalError(e: unknown): e is TerminalError {
  return typeof e === 'object' && e !== null && TERMINAL in e;
}
/** True for {@link RetryableError}, from any package copy. */
export function isRetryableError(e: unknown): e is RetryableError {
  return typeof e === 'object' && e !== null && RETRYABLE in e;
}
/** True for {@link NonDeterminismError}, from any package copy. */
export function isNonDeterminismError(e: unknown): e is NonDeterminismError {
  return typeof e === 'object' && e !== null && NON_DETERMINISM in e;
}

/** Turns any thrown value into an `Error`. */
export function ensureError(e: unknown): Error {
  if (e instanceof Error) return e;
  let text: string;
  try {
    text = typeof e === 'string' ? e : JSON.stringify(e);
  } catch {
    text = String(e);
  }
  return new Error(text);
}

/** The journaled form of a failure: never a stack. */
export interface SerializedError {
  name: string;
  /** The error's kind (`TERMINAL`, `CANCELLED`, …; an error's `kind`), reported as `errorCode`. */
  code: ErrorCode;
  message: string;
  /** HTTP-style status for terminal failures. */
  status?: number;
  metadata?: Record<string, string>;
}

/** Converts an error to its journaled form. */
export function serializeError(e: unknown): SerializedError {
  const err = ensureError(e);
  const kind = (err as { kind?: unknown }).kind;
  const out: SerializedError = {
    name: err.name,
    // Any error with a string `kind` keeps it (Latchkey's own carry an ErrorCode).
    code: typeof kind === 'string' ? (kind as ErrorCode) : ErrorCode.INTERNAL,
    message: err.message,
  };
  if (isTerminalError(err)) {
    out.status = err.code;
    if (err.metadata) out.metadata = err.metadata;
  }
  return out;
}

/**
 * An error as a client of an ingress sees it: the body of an HTTP error answer, the fields of a
 * WebSocket `error` frame, the `error` of a failed result. HTTP-style `code`, machine-readable
 * `errorCode`, `message`, then what the error carries: a `TerminalError`'s `metadata`, the `issues`
 * of `INVALID_INPUT`, Restate's `source`, a `retryAfter` (seconds).
 */
export interface ErrorBody {
  code: number;
  errorCode: ErrorCode;
  message: string;
  metadata?: Record<string, string>;
  [extra: string]: unknown;
}

/** What a client sees of a failed invocation (its journaled failure). */
export function errorBody(e: SerializedError): ErrorBody {
  const body: ErrorBody = { code: e.status ?? 500, errorCode: e.code, message: e.message };
  if (e.metadata !== undefined) body.metadata = e.metadata;
  return body;
}

/**
 * A request refused by an ingress or the admin API (HTTP or WebSocket): `code` the HTTP status,
 * `kind` the `errorCode`, `extra` further fields of the answer. A refused request changes nothing.
 */
export class IngressError extends DurableError {
  /** Further fields of the answer (`issues`, `source`, `retryAfter`). */
  readonly extra: Record<string, unknown>;
  constructor(
    status: number,
    kind: ErrorCode,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(message, kind, { code: status });
    this.extra = extra;
  }
  /** The HTTP status (the same as `code`). */
  get status(): number {
    return this.code;
  }
  override get name(): string {
    return 'IngressError';
  }
  /** The answer's body (see {@link ErrorBody}). */
  body(): ErrorBody {
    return { code: this.code, errorCode: this.kind, message: this.message, ...this.extra };
  }
}

/** HTTP statuses of the store's refusals a client may see (anything else is a 500). */
const STORE_REFUSALS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.REDIS_WIPED]: 503,
  // `durability: 'replicated'`: no replica confirmed the write in time (the client may retry).
  [ErrorCode.NOT_REPLICATED]: 503,
  // A name the store has no key for (the ingresses' checks refuse such names already).
  [ErrorCode.INVALID_NAME]: 400,
  // A list cursor the store cannot read (the admin API checks cursors before).
  [ErrorCode.INVALID_CURSOR]: 400,
};

/**
 * The answer for a failure of a request: an {@link IngressError} as it is; a store's refusal with a
 * known kind as a client error (`REDIS_WIPED` 503, `INVALID_NAME` 400); undefined for anything
 * else, which an ingress answers `500 INTERNAL "internal error"` and logs.
 */
export function clientError(e: unknown): IngressError | undefined {
  if (e instanceof IngressError) return e;
  const kind = (e as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(STORE_REFUSALS, kind)) return undefined;
  const code = kind as ErrorCode;
  return new IngressError(STORE_REFUSALS[code]!, code, (e as Error).message);
}

/** The answer to a failure no client may see the details of. */
export function internalError(): IngressError {
  return new IngressError(500, ErrorCode.INTERNAL, 'internal error');
}

/** Rebuilds a terminal error from its journaled form (replay, or a caller). */
export function deserializeTerminalError(s: SerializedError): TerminalError {
  if (s.name === 'CancelledError') return new CancelledError(s.message);
  if (s.name === 'TimeoutError') return new TimeoutError(s.message);
  const opts: TerminalErrorOptions = {};
  if (s.status !== undefined) opts.errorCode = s.status;
  if (s.metadata !== undefined) opts.metadata = s.metadata;
  return new TerminalError(s.message, opts);
}
