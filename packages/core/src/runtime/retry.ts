import { durationMs } from '../define/duration.js';
import type { RetryPolicy } from '../define/options.js';

/**
 * The default invocation retry policy: 50 ms, ×2, capped at 60 s, and after 70 attempts the
 * invocation is paused (Restate 1.7's server default: 70 attempts, then pause; its first interval
 * is 500 ms), so a handler that fails on every attempt (a bug, a missing function) ends up visible
 * as `paused` instead of retrying forever.
 */
export const DEFAULT_RETRY = { initialMs: 50, factor: 2, maxMs: 60_000, maxAttempts: 70 } as const;

/** What to do after attempt number `attempt` (1-based) failed with a retryable error. */
export function nextRetry(
  policy: RetryPolicy | undefined,
  attempt: number,
  retryAfterMs?: number,
): { kind: 'retry'; delayMs: number } | { kind: 'pause' } | { kind: 'kill' } {
  const max = policy?.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
  if (attempt >= max) return { kind: policy?.onMaxAttempts === 'kill' ? 'kill' : 'pause' };
  if (retryAfterMs !== undefined) return { kind: 'retry', delayMs: Math.max(0, retryAfterMs) };
  const initial =
    policy?.initialInterval !== undefined
      ? durationMs(policy.initialInterval)
      : DEFAULT_RETRY.initialMs;
  const factor = policy?.exponentiationFactor ?? DEFAULT_RETRY.factor;
  const cap =
    policy?.maxInterval !== undefined ? durationMs(policy.maxInterval) : DEFAULT_RETRY.maxMs;
  return { kind: 'retry', delayMs: Math.min(cap, initial * factor ** Math.max(0, attempt - 1)) };
}
