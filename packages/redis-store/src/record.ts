/**
 * The invocation record codec: the only TypeScript that knows the invocation hash's field names
 * (`<prefix>:{p}:inv:<id>`; ARCHITECTURE.md lists every field). Reads of the hash go through
 * these functions; the Lua scripts are its writers.
 */
import type { Redis } from 'ioredis';
import type {
  Entry,
  InvocationInfo,
  InvocationStatus,
  InvocationSummary,
  Outcome,
  TargetMode,
} from '@latchkey/core';
import { toSerializedError } from './wire.js';

/** The fields `describe` reads: never the input, the headers or the secret seed. */
const DESCRIBE_FIELDS = [
  'st',
  'svc',
  'h',
  'key',
  'mode',
  'rc',
  'ct',
  'lastErr',
  'out',
  'err',
] as const;
const DESCRIBE_WITH_JOURNAL = [...DESCRIBE_FIELDS, 'jf'] as const;

/** A stored outcome (`out`/`err`) as an {@link Outcome}. */
function outcomeOf(out: string | null | undefined, err: string | null | undefined): Outcome {
  if (err !== null && err !== undefined) return { ok: false, error: toSerializedError(err) };
  return { ok: true, value: out === null || out === undefined || out === '' ? undefined : out };
}

/** An invocation's description (`withJournal`: and its journal, when held whole as `jf`). */
export async function readDescription(
  redis: Redis,
  inv: string,
  id: string,
  withJournal: boolean,
): Promise<{ info: InvocationInfo; journal: Entry[] | undefined } | undefined> {
  const f = await redis.hmget(inv, ...(withJournal ? DESCRIBE_WITH_JOURNAL : DESCRIBE_FIELDS));
  const [st, svc, h, key, mode, rc, ct, lastErr, out, err, jf] = f;
  if (!st) return undefined;
  const info: InvocationInfo = {
    id,
    target: { service: svc!, handler: h!, ...(key ? { key } : {}) },
    mode: mode as TargetMode,
    status: st as InvocationStatus,
    attempts: Number(rc ?? 0),
    createdAt: Number(ct),
  };
  if (lastErr) info.lastFailure = toSerializedError(lastErr);
  if (st === 'completed') info.outcome = outcomeOf(out, err);
  // A journal written whole at completion is a field of the hash ('jf'), else it is a list.
  const journal = jf !== null && jf !== undefined ? (JSON.parse(jf) as Entry[]) : undefined;
  return { info, journal };
}

/** The outcome of a completed invocation, or undefined. */
export async function readOutcome(redis: Redis, inv: string): Promise<Outcome | undefined> {
  const [st, out, err] = await redis.hmget(inv, 'st', 'out', 'err');
  if (st !== 'completed') return undefined;
  return outcomeOf(out, err);
}

/** The outcome a watch script or an outcome message carries (`ok`: `out`, else `err` JSON). */
export function decodeOutcome(ok: boolean, payload: string): Outcome {
  return ok
    ? { ok: true, value: payload === '' ? undefined : payload }
    : { ok: false, error: toSerializedError(payload) };
}

/** An invocation's target and mode, or undefined when there is no such invocation. */
export async function readTarget(
  redis: Redis,
  inv: string,
): Promise<{ service: string; key: string; mode: TargetMode } | undefined> {
  const [svc, key, mode] = await redis.hmget(inv, 'svc', 'key', 'mode');
  if (svc === null || svc === undefined) return undefined;
  return { service: svc, key: key ?? '', mode: mode as TargetMode };
}

/** An invocation's secret seed, or undefined. */
export async function readSeed(redis: Redis, inv: string): Promise<string | undefined> {
  return (await redis.hget(inv, 'rs')) || undefined;
}

/** Queues the reads of `progress` on a pipeline: status and whole journal (`jf`). */
export function queueProgress(pipe: ReturnType<Redis['pipeline']>, inv: string): void {
  pipe.hmget(inv, 'st', 'jf');
}

/** Decodes {@link queueProgress}'s result: status, and the journal when held whole. */
export function decodeProgress(res: unknown): {
  status: InvocationStatus | undefined;
  jf: string | undefined;
} {
  const [st, jf] = (res as (string | null)[] | undefined) ?? [];
  return { status: (st || undefined) as InvocationStatus | undefined, jf: jf ?? undefined };
}

/**
 * The hash fields the list filters check (an index answers the others): status, service,
 * handler, key, idempotency key, created and modified time (`mt`, written with every status
 * change; see `set_status` in prelude.lua).
 */
export const FILTER_FIELD = {
  status: 'st',
  service: 'svc',
  handler: 'h',
  key: 'key',
  idempotencyKey: 'idem',
  createdAt: 'ct',
  modifiedAt: 'mt',
} as const;

/** The fields of an {@link InvocationSummary}: never the input, the headers or the seed. */
const SUMMARY_FIELDS = [
  'st',
  'svc',
  'h',
  'key',
  'mode',
  'rc',
  'ct',
  'mt',
  'idem',
  'wake',
  'lastErr',
] as const;

/** Queues the read of an invocation's summary on a pipeline; decode with {@link decodeSummary}. */
export function queueSummary(pipe: ReturnType<Redis['pipeline']>, inv: string): void {
  pipe.hmget(inv, ...SUMMARY_FIELDS);
}

/** An invocation's summary from {@link queueSummary}'s result; undefined when it is gone. */
export function decodeSummary(id: string, res: unknown): InvocationSummary | undefined {
  const f = (res as (string | null)[] | undefined) ?? [];
  const [st, svc, h, key, mode, rc, ct, mt, idem, wake, lastErr] = f;
  if (!st) return undefined;
  const createdAt = Number(ct);
  const s: InvocationSummary = {
    id,
    target: { service: svc!, handler: h!, ...(key ? { key } : {}) },
    mode: mode as TargetMode,
    status: st as InvocationStatus,
    attempts: Number(rc ?? 0),
    createdAt,
    // A record written before 'mt' existed: its creation.
    modifiedAt: mt ? Number(mt) : createdAt,
  };
  if (idem) s.idempotencyKey = idem;
  if (st === 'backing-off' && wake) s.nextRetryAt = Number(wake);
  if (lastErr) s.lastFailure = toSerializedError(lastErr);
  return s;
}
