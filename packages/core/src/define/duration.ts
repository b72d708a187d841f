import { TerminalError } from '../errors.js';

/** A duration as Restate's SDK accepts it: milliseconds, or an object of parts. */
export type Duration =
  | number
  | {
      days?: number;
      hours?: number;
      minutes?: number;
      seconds?: number;
      milliseconds?: number;
    };

/** Converts a {@link Duration} to whole milliseconds (negative values become 0). */
export function durationMs(d: Duration): number {
  let ms: number;
  if (typeof d === 'number') ms = d;
  else
    ms =
      (d.days ?? 0) * 86_400_000 +
      (d.hours ?? 0) * 3_600_000 +
      (d.minutes ?? 0) * 60_000 +
      (d.seconds ?? 0) * 1000 +
      (d.milliseconds ?? 0);
  if (!Number.isFinite(ms)) throw new TypeError(`invalid duration: ${JSON.stringify(d)}`);
  return Math.max(0, Math.round(ms));
}

/**
 * The longest durable timer (sleep, delayed send, `orTimeout`): 100 years (365-day years). Due times
 * stay exact integers in every store (far below 2^53 ms), and a longer wait is, for any purpose,
 * never. The ingress's own limit for a client's `delay` is much lower (see `maxDelay`).
 */
export const MAX_TIMER_MS = 100 * 365 * 86_400_000;

/**
 * A timer's length in whole milliseconds (as {@link durationMs} computes it); throws a
 * `TerminalError` (400) when the duration is not a finite number or exceeds {@link MAX_TIMER_MS}.
 */
export function timerMs(d: Duration, what: string): number {
  let ms: number;
  try {
    ms = durationMs(d);
  } catch {
    throw new TerminalError(`invalid ${what}: ${JSON.stringify(d)}`, { errorCode: 400 });
  }
  if (ms > MAX_TIMER_MS)
    throw new TerminalError(
      `${what} of ${ms} ms exceeds the maximum of ${MAX_TIMER_MS} ms (100 years)`,
      { errorCode: 400 },
    );
  return ms;
}
