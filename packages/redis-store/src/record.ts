/**
 * The invocation record codec: the only TypeScript that knows the invocation hash's field names
 * (`<prefix>:{p}:inv:<id>`; ARCHITECTURE.md lists every field). Reads of the hash go through
 * these functions; the Lua scripts are its writers.
 */
import type { Redis } from 'ioredis';
import type {
  Entry,
  EntryTimes,
  FailureDetail,
  FailureRecord,
  InvocationDetail,
  InvocationInfo,
  InvocationStatus,
  InvocationSummary,
  Outcome,
  TargetMode,
} from '@latchkey/core';
import { traceIdOf } from '@latchkey/core/internal';
import { parseCompletions, toSerializedError } from './wire.js';

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

/** The pipeline of `inspect`: the whole invocation hash, its journal list and completions. */
export async function readDetailRaw(
  redis: Redis,
  keys: { inv: string; journal: string; completions: string },
): Promise<{ hash: Record<string, string>; journal: string[]; completions: string[] }> {
  const res = await redis
    .pipeline()
    .hgetall(keys.inv)
    .lrange(keys.journal, 0, -1)
    .hgetall(keys.completions)
    .exec();
  const at = (i: number): unknown => {
    const [err, v] = res?.[i] ?? [null, undefined];
    if (err) throw err;
    return v;
  };
  const comps = (at(2) ?? {}) as Record<string, string>;
  return {
    hash: (at(0) ?? {}) as Record<string, string>,
    journal: (at(1) ?? []) as string[],
    completions: Object.entries(comps).flat(),
  };
}

/** A time field (ms) as a number, or undefined when absent or not a number. */
function time(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Per-entry times from the hash: 't:<from>' ('<ms>' or '<ms>|<index>:<stepMs>,...', one per
 * committed batch), 'd:<index>' (a completion's arrival); a journal kept whole ('jf') without
 * batch times was recorded at completion ('ft').
 */
function entryTimes(h: Record<string, string>, length: number, whole: boolean): EntryTimes[] {
  const times: EntryTimes[] = Array.from({ length }, () => ({}));
  const batches: [number, number][] = [];
  for (const [field, v] of Object.entries(h)) {
    if (field.startsWith('t:')) {
      const from = Number(field.slice(2));
      const [at, steps] = v.split('|');
      const t = time(at);
      if (Number.isSafeInteger(from) && t !== undefined) batches.push([from, t]);
      for (const s of steps ? steps.split(',') : []) {
        const [i, ms] = s.split(':').map(Number);
        const e = times[i!];
        if (e && Number.isFinite(ms)) e.stepMs = ms!;
      }
    } else if (field.startsWith('d:')) {
      const e = times[Number(field.slice(2))];
      const t = time(v);
      if (e && t !== undefined) e.completedAt = t;
    }
  }
  batches.sort((a, b) => a[0] - b[0]);
  if (batches.length === 0 && whole) {
    const ft = time(h.ft);
    if (ft !== undefined) batches.push([0, ft]);
  }
  for (let b = 0; b < batches.length; b++) {
    const [from, t] = batches[b]!;
    const to = Math.min(batches[b + 1]?.[0] ?? length, length);
    for (let i = from; i < to; i++) times[i]!.recordedAt = t;
  }
  return times;
}

/** The last failed attempt: 'lastErr' with its detail ('fail': attempt, step, stack; 'fat'). */
function failureOf(h: Record<string, string>): FailureRecord | undefined {
  if (!h.lastErr) return undefined;
  let detail: Partial<FailureDetail> = {};
  try {
    if (h.fail) detail = JSON.parse(h.fail) as FailureDetail;
  } catch {
    detail = {};
  }
  const rec: FailureRecord = {
    attempt: typeof detail.attempt === 'number' ? detail.attempt : Number(h.rc ?? 0),
    error: toSerializedError(h.lastErr),
  };
  const at = time(h.fat);
  if (at !== undefined) rec.at = at;
  if (detail.step) rec.step = detail.step;
  if (typeof detail.stack === 'string') rec.error.stack = detail.stack;
  return rec;
}

/**
 * An invocation as an operator sees it, from {@link readDetailRaw}'s reads; undefined when it
 * does not exist. Never the secret seed ('rs').
 */
export function decodeDetail(
  id: string,
  raw: { hash: Record<string, string>; journal: string[]; completions: string[] },
): InvocationDetail | undefined {
  const h = raw.hash;
  if (!h.st) return undefined;
  const status = h.st as InvocationStatus;
  const journal = h.jf
    ? (JSON.parse(h.jf) as Entry[])
    : raw.journal.map((e) => JSON.parse(e) as Entry);
  const d: InvocationDetail = {
    id,
    target: { service: h.svc!, handler: h.h!, ...(h.key ? { key: h.key } : {}) },
    mode: h.mode as TargetMode,
    status,
    attempts: Number(h.rc ?? 0),
    createdAt: Number(h.ct),
    journal,
    times: entryTimes(h, journal.length, h.jf !== undefined),
    completions: parseCompletions(raw.completions),
  };
  if (h.lastErr) d.lastFailure = toSerializedError(h.lastErr);
  if (status === 'completed') d.outcome = outcomeOf(h.out, h.err);
  if (h.in !== undefined) d.input = h.in;
  const fst = time(h.fst);
  if (fst !== undefined) d.firstStartedAt = fst;
  const lst = time(h.lst);
  if (lst !== undefined) d.lastStartedAt = lst;
  const ft = time(h.ft);
  if (status === 'completed' && ft !== undefined) d.completedAt = ft;
  const wake = time(h.wake);
  if (status === 'backing-off' && wake !== undefined) d.nextRetryAt = wake;
  const by = h.by ? /^(.+):(\d+)$/.exec(h.by) : null;
  if (by) d.invokedBy = { id: by[1]!, index: Number(by[2]) };
  if (h.idem) d.idempotencyKey = h.idem;
  if (h.rsf) d.restartedFrom = h.rsf;
  const traceId = traceIdOf(h.tc);
  if (traceId !== undefined) d.traceId = traceId;
  const failure = failureOf(h);
  if (failure) d.failure = failure;
  return d;
}
