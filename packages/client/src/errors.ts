import type { ErrorCode } from '@latchkey/core/protocol';

/**
 * Why a request of the client failed: the server's answer (a handler's
 * terminal failure, a rejected request) or a local reason (timeout, abort,
 * closed client).
 *
 * `status` is HTTP-style, as in the server's frames: 400 invalid request,
 * 404 not found, 409 cancelled or killed, 500 terminal failure, and so on.
 * The client's own failures use:
 *
 * | `code` | `status` | when |
 * |---|---|---|
 * | `TIMEOUT` | 408 | the request's `timeout` elapsed |
 * | `ABORTED` | 499 | the request's `signal` was aborted (`cause` is the signal's reason) |
 * | `CLIENT_CLOSED` | 499 | {@link LatchkeyClient.close} was called while the request was open |
 * | `DISCONNECTED` | 503 | the socket was lost and reconnecting is off or gave up |
 * | `AMBIGUOUS` | 503 | a call without idempotency key was sent but not yet accepted when the socket dropped (only with `idempotencyKeys: false`) |
 * | `FRAME_TOO_LARGE` | 413 | the request is larger than `maxFrameBytes` |
 * | `PROTOCOL` | 502 | the server answered something the client does not understand |
 *
 * @example
 * ```ts
 * try {
 *   await client.serviceClient(greeter).greet('Ada', { timeout: 1000 });
 * } catch (e) {
 *   if (e instanceof CallError && e.code === 'TIMEOUT') console.log('still running');
 * }
 * ```
 */
export class CallError extends Error {
  /** HTTP-style status (the server's `code`, or the client's own, see above). */
  readonly status: number;
  /** Machine-readable code (the server's `errorCode`, e.g. `NOT_FOUND`, or the client's own). */
  readonly code: string;
  /** The invocation the error belongs to, when known. */
  readonly invocationId: string | undefined;
  /** Validation issues of an `INVALID_INPUT` answer. */
  readonly issues: unknown;
  /** The metadata of the handler's `TerminalError`, when it carried some. */
  readonly metadata: Record<string, string> | undefined;

  /**
   * Builds an error; used by the client, rarely needed elsewhere. `code` is one of core's
   * `ErrorCode`s (a newer server may answer others).
   */
  constructor(
    status: number,
    code: ErrorCode | (string & {}),
    message: string,
    extra: {
      invocationId?: string;
      issues?: unknown;
      metadata?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'CallError';
    this.status = status;
    this.code = code;
    this.invocationId = extra.invocationId;
    this.issues = extra.issues;
    this.metadata = extra.metadata;
  }
}
