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
