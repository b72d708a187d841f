/**
 * The reply of `lease()` in the prelude (startAttempt's 'run', and the next head leased by a
 * completion): everything an attempt starts with, decoded once.
 */
import type { Completion, TargetMode } from '@latchkey/core';
import { parseCompletions } from './wire.js';

/** What a leasing script (start, accept's successor in complete) hands an attempt. */
export interface Lease {
  tag: 'run';
  epoch: string;
  attempt: number;
  now: number;
  input: string;
  /** The request headers, as JSON. */
  headers: string;
  service: string;
  handler: string;
  key: string;
  mode: TargetMode;
  journal: string[];
  /** The key's state, flat (HGETALL): empty when the reply leaves it out. */
  state: string[];
  completions: Map<number, Completion>;
  cancelRequested: boolean;
  /** The invocation's seed ('' for one accepted before seeds were drawn). */
  seed: string;
  /** Its trace context ('' for none). */
  trace: string;
  /** When it was accepted (ms; NaN when unknown). */
  createdAt: number;
  /** When it became ready to run (ms). */
  readyAt: number;
  /** When the previous attempt, lost with its worker, started (ms), or undefined. */
  lostAttemptStartedAt: number | undefined;
}

/** `lease()`'s reply in the prelude: `{'run', epoch, attempt, now, input, headers, svc, ...}`. */
export function decodeLease(r: unknown[]): Lease {
  return {
    tag: 'run',
    epoch: r[1] as string,
    attempt: Number(r[2]),
    now: Number(r[3]),
    input: r[4] as string,
    headers: r[5] as string,
    service: r[6] as string,
    handler: r[7] as string,
    key: (r[8] as string | undefined) ?? '',
    mode: r[9] as TargetMode,
    journal: r[10] as string[],
    state: r[11] as string[],
    completions: parseCompletions(r[12]),
    cancelRequested: Number(r[13]) === 1,
    seed: (r[14] as string | undefined) ?? '',
    trace: (r[15] as string | undefined) ?? '',
    createdAt: r[16] === '' ? NaN : Number(r[16]),
    readyAt: Number(r[17]),
    lostAttemptStartedAt: r[18] === '' || r[18] === undefined ? undefined : Number(r[18]),
  };
}
