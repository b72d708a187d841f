/** Times and durations as the CLI shows them. */

/** A time as ISO 8601 in UTC (`2026-12-04T08:30:00.123Z`); `—` when absent. */
export function isoTime(t: number | undefined): string {
  return t === undefined || !Number.isFinite(t) ? '—' : new Date(t).toISOString();
}

/** The time of day in UTC (`08:30:00.123`), for rows of one invocation. */
export function clockTime(t: number | undefined): string {
  return t === undefined || !Number.isFinite(t) ? '' : new Date(t).toISOString().slice(11, 23);
}

/** A duration, short: `850 ms`, `1.2 s`, `3m 05s`, `2h 03m`, `4d 05h`. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(abs / 1000);
  const sign = ms < 0 ? '-' : '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${sign}${Math.floor(s / 86_400)}d ${pad(Math.floor(s / 3600) % 24)}h`;
}

/** How far `t` is from `now`: `in 2.0 s`, `3m 05s ago`. */
export function relative(t: number, now: number): string {
  const d = t - now;
  return d >= 0 ? `in ${duration(d)}` : `${duration(-d)} ago`;
}

/** A time with its distance from now: `2026-12-04T08:30:00.123Z (in 2.0 s)`; undefined when absent. */
export function timeWithRelative(t: number | undefined, now: number): string | undefined {
  return t === undefined ? undefined : `${isoTime(t)} (${relative(t, now)})`;
}
