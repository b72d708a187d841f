import { DurableError, ErrorCode } from '@latchkey/core';

/** A problem with Redis itself: wrong configuration, wiped data, unexpected replies. */
export class StoreError extends DurableError {
  constructor(message: string, kind: ErrorCode, options?: { cause?: unknown }) {
    super(message, kind, options);
  }
  override get name(): string {
    return 'StoreError';
  }
}

/** Another worker took the invocation over: this writer's epoch is stale. */
export class LeaseLostError extends DurableError {
  constructor(invocationId: string, reason: string) {
    super(
      `lease lost for ${invocationId} (${reason}): another worker owns it now`,
      ErrorCode.FENCED,
    );
  }
  override get name(): string {
    return 'LeaseLostError';
  }
}

/**
 * The one mapping from a script's refusal to an error: a fenced write (`{'fenced', why}`: the
 * fence names another attempt, the epoch moved on, or the journal index does not fit) means this
 * attempt lost its lease.
 */
export function fencedError(
  invocationId: string,
  reply: { tag: 'fenced'; why: string },
): LeaseLostError {
  return new LeaseLostError(invocationId, reply.why);
}
