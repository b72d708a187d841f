/** The in-memory store's `inspect` and `restartAsNew` (see `AdminStore`). */
import { traceIdOf } from '../../telemetry/trace-context.js';
import type { Completion } from '../../journal/entry.js';
import {
  prefixProblem,
  type InvocationDetail,
  type RestartOptions,
  type RestartResult,
} from '../../store/detail.js';
import type { Engine } from './engine.js';
import { stored, type Rec } from './records.js';

/** An invocation as an operator sees it. */
export function inspectRec(rec: Rec): InvocationDetail {
  const s = rec.seen;
  const d: InvocationDetail = {
    id: rec.id,
    target: { ...rec.target },
    mode: rec.mode,
    status: rec.status,
    attempts: rec.failures,
    createdAt: rec.createdAt,
    journal: stored(rec.journal),
    times: rec.journal.map((_, i) => ({ ...s.times[i] })),
    completions: new Map(stored([...rec.completions])),
    input: rec.input,
  };
  if (rec.lastFailure) d.lastFailure = rec.lastFailure;
  if (rec.outcome) d.outcome = rec.outcome;
  if (s.firstStartedAt !== undefined) d.firstStartedAt = s.firstStartedAt;
  if (s.lastStartedAt !== undefined) d.lastStartedAt = s.lastStartedAt;
  if (rec.status === 'completed' && s.completedAt !== undefined) d.completedAt = s.completedAt;
  if (rec.status === 'backing-off' && s.nextRetryAt !== undefined) d.nextRetryAt = s.nextRetryAt;
  if (s.invokedBy) d.invokedBy = { ...s.invokedBy };
  if (s.idempotencyKey !== undefined) d.idempotencyKey = s.idempotencyKey;
  if (s.restartedFrom !== undefined) d.restartedFrom = s.restartedFrom;
  const traceId = traceIdOf(rec.trace);
  if (traceId !== undefined) d.traceId = traceId;
  if (s.failure) d.failure = stored(s.failure);
  return d;
}

/** A completed invocation started again as a new one (see `AdminStore.restartAsNew`). */
export function restartRec(
  engine: Engine,
  id: string,
  options: RestartOptions = {},
): RestartResult {
  const old = engine.recs.get(id);
  if (!old) return { ok: false, reason: 'gone', message: `no invocation ${id}` };
  if (old.status !== 'completed') {
    const message = `invocation ${id} is ${old.status}: only a completed invocation can be restarted`;
    return { ok: false, reason: 'not-completed', message };
  }
  if (old.mode === 'workflow') {
    const message = `invocation ${id} is a workflow run, which runs once per workflow id`;
    return { ok: false, reason: 'workflow', message };
  }
  const n = options.keepPrefix ?? 0;
  const problem = prefixProblem(old.journal, old.completions, n);
  if (problem) return { ok: false, reason: 'prefix', message: problem };
  const newId = engine.newId();
  const { target, mode, input, headers } = old;
  engine.accept({ target, mode, input, headers, ...NO_RETENTION }, newId, engine.newSeed());
  // Workers take it on a later turn: its journal starts with the kept prefix before that.
  const rec = engine.recs.get(newId)!;
  rec.journal = stored(old.journal.slice(0, n));
  for (const [i, c] of old.completions) {
    if (i < n) rec.completions.set(i, stored<Completion>(c));
  }
  const now = Date.now();
  rec.seen.times = rec.journal.map(() => ({ recordedAt: now }));
  rec.seen.restartedFrom = id;
  return { ok: true, invocationId: newId };
}

/** The in-memory store keeps no retention. */
const NO_RETENTION = { journalRetentionMs: 0, idempotencyRetentionMs: 0, workflowRetentionMs: 0 };
