/** The timers a runner arms (injected so tests drive time without real timers). */
export interface Timers {
  /** Calls `fn` after `ms`; answers a handle for `clear`. */
  set(fn: () => void, ms: number): unknown;
  /** Drops a timer (a no-op for one that fired, or for undefined). */
  clear(handle: unknown): void;
}

/** The process's own timers. */
export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** The longest delay a timer takes at once (longer sleeps re-arm when it fires). */
export const MAX_DELAY = 2 ** 31 - 1;
