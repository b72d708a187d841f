/**
 * Metadata the runtime measures about new entries, for operators only: never journaled as part of
 * an entry, never read by replay. A store that keeps it (the admin API's timeline shows it) reads
 * it from the entry objects a commit hands it; a store that does not simply ignores it.
 */
import type { NewEntry } from './entry.js';

const stepMs = new WeakMap<object, number>();

/** Notes how long the closure of the step whose result `entry` is ran (ms). */
export function noteStepMs(entry: NewEntry, ms: number): void {
  stepMs.set(entry, Math.max(0, Math.round(ms)));
}

/** How long the closure of the step whose result `entry` is ran (ms), if the runtime noted it. */
export function stepMsOf(entry: NewEntry): number | undefined {
  return stepMs.get(entry);
}
