import { durationMs } from '../define/duration.js';
import { TerminalError, ensureError, isTerminalError, serializeError } from '../errors.js';
import type { Completion, NewEntry } from '../journal/entry.js';
import { noteStepMs } from '../journal/entry-meta.js';
import { failedInStep } from '../runtime/failure.js';
import { never, type JournalRunner } from '../runtime/journal-runner.js';
import { type DurablePromise, decodeJson } from './durable-promise.js';
import { durable } from './journaled.js';
import type { RunOptions } from './types.js';

function roundTrip<T>(v: T): T {
  if (v === undefined) return v;
  return JSON.parse(JSON.stringify(v)) as T;
}

function runDelay(opts: RunOptions, retry: number): number {
  const initial =
    opts.initialRetryInterval !== undefined ? durationMs(opts.initialRetryInterval) : 50;
  const factor = opts.retryIntervalFactor ?? 2;
  const cap = opts.maxRetryInterval !== undefined ? durationMs(opts.maxRetryInterval) : 10_000;
  return Math.min(cap, initial * factor ** retry);
}

/** The result a recorded step entry holds. */
function recordedResult(v: unknown, e: Completion | undefined): Completion {
  if (e) return e;
  return { ok: true, v: v === undefined ? undefined : JSON.stringify(v) };
}

/**
 * A `ctx.run` step: replayed from its recorded result, or run (with its retry options) and its
 * result journaled; a non-terminal failure fails the attempt (the step runs again on retry).
 */
export function runStep<T>(
  r: JournalRunner,
  name: string,
  action: () => T | Promise<T>,
  options: RunOptions | undefined,
): DurablePromise<T> {
  return durable<T>(r, 'run', name, decodeJson, {
    recordedCompletion: (rec) =>
      rec.k === 'run'
        ? recordedResult(rec.v, rec.e ? { ok: false, e: rec.e } : undefined)
        : undefined,
    then: (c, recorded) => {
      if (!recorded) void executeStep(r, c.index, name, action, options);
    },
  });
}

async function executeStep<T>(
  r: JournalRunner,
  index: number,
  name: string,
  action: () => T | Promise<T>,
  options: RunOptions | undefined,
): Promise<void> {
  // A closure may send an awakeable's id out: the awakeable must be completable by then.
  const awakeables = r.awakeablesCommitted();
  if (awakeables) {
    try {
      await awakeables;
    } catch {
      return; // lease lost: the attempt is over
    }
    if (r.isEnded) return;
  }
  r.beginStep();
  // The closure's duration, for operators (the admin API's timeline); never replayed.
  const started = Date.now();
  // Its span (the closure runs in the span's context): only a step that runs has one.
  const span = r.trace?.run(name, index);
  const act = span ? (): T | Promise<T> => span.within(action) : action;
  let done: Completion;
  let value: unknown;
  try {
    value = roundTrip(await execute(r, act, options));
    done = recordedResult(value, undefined);
  } catch (e) {
    if (!isTerminalError(e)) {
      // No result is recorded: the attempt fails (in this step) and the step runs again on retry.
      r.endStep();
      span?.end(serializeError(ensureError(e)), true);
      r.fail(failedInStep(ensureError(e), { index, kind: 'run', name }));
      return;
    }
    done = { ok: false, e: serializeError(e) };
  }
  span?.end(done.ok ? undefined : done.e);
  r.endStep();
  if (r.isEnded) return;
  const entry: NewEntry = done.ok
    ? { k: 'run', n: name, ...(value === undefined ? {} : { v: value }) }
    : { k: 'run', n: name, e: done.e };
  noteStepMs(entry, Date.now() - started);
  r.fill(index, entry);
  try {
    await r.flushThrough(index);
    // Always-suspend mode: the step's result is replayed from the journal by the next attempt.
    if (await r.suspendAfterStep()) return;
  } catch {
    return; // lease lost: the attempt is over
  }
  r.settle(index, done);
}

async function execute<T>(
  r: JournalRunner,
  action: () => T | Promise<T>,
  options: RunOptions | undefined,
): Promise<T> {
  if (
    !options ||
    (options.maxRetryAttempts === undefined && options.maxRetryDuration === undefined)
  ) {
    return await action();
  }
  const started = Date.now();
  const maxDuration =
    options.maxRetryDuration !== undefined ? durationMs(options.maxRetryDuration) : Infinity;
  const maxAttempts = options.maxRetryAttempts ?? Infinity;
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (e) {
      if (isTerminalError(e)) throw e;
      const delay = runDelay(options, attempt - 1);
      if (attempt >= maxAttempts || Date.now() - started + delay > maxDuration) {
        const why = ensureError(e).message;
        throw new TerminalError(`ctx.run retries exhausted after ${attempt} attempts: ${why}`);
      }
      await new Promise((res) => setTimeout(res, delay));
      if (r.isEnded) return never();
    }
  }
}
