/**
 * The admin API's answer for one invocation (`GET /invocations/{id}`, docs/ADMIN-API.md): an
 * {@link InvocationDetail} as JSON, with the journal as a timeline and values as previews cut at
 * `previewBytes` unless the whole value was asked for. Pure: no I/O.
 */
import type { SerializedError } from '../errors.js';
import type { Completion, Entry } from '../journal/entry.js';
import type { EntryTimes, InvocationDetail, StepRef } from '../store/detail.js';
import type { Target } from '../store/invocation.js';

/** The default preview size of the admin API (bytes of JSON text). */
export const DEFAULT_PREVIEW_BYTES = 1024;

/** A value as JSON text, whole or cut (`truncated`, with the whole text's size in `bytes`). */
export type Preview = { json: string } | { json: string; truncated: true; bytes: number };

/** One journal entry of the timeline. */
export interface TimelineItem {
  index: number;
  kind: Entry['k'];
  name?: string;
  recordedAt?: number;
  durationMs?: number;
  value?: Preview;
  failure?: SerializedError;
  childId?: string;
  due?: number;
}

/** A call or send the invocation made. */
export interface ChildRef {
  id: string;
  index: number;
  kind: 'call' | 'send';
  target: Target;
}

/** How values are shown: cut at `previewBytes`, or whole (`full`). */
export interface ViewOptions {
  previewBytes: number;
  full: boolean;
}

/** JSON text as a {@link Preview}: whole, or its first `max` bytes (never half a character). */
export function preview(json: string, o: ViewOptions): Preview {
  if (o.full || json.length <= o.previewBytes / 4) return { json };
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes <= o.previewBytes) return { json };
  let cut = Buffer.from(json, 'utf8').subarray(0, o.previewBytes).toString('utf8');
  // A cut inside a multi-byte character decodes as U+FFFD: drop it.
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return { json: cut, truncated: true, bytes };
}

/** A journaled value (already decoded from the entry's JSON) as a preview. */
function valuePreview(v: unknown, o: ViewOptions): Preview {
  return preview(v === undefined ? 'null' : JSON.stringify(v), o);
}

/** The value or failure a completion carries. */
function fromCompletion(c: Completion, item: TimelineItem, o: ViewOptions): void {
  if (!c.ok) item.failure = c.e;
  else if (c.v !== undefined) item.value = preview(c.v, o);
}

/** The value or failure an entry records itself (`v`/`e`). */
function fromEntry(e: { v?: unknown; e?: SerializedError }, item: TimelineItem, o: ViewOptions) {
  if (e.e !== undefined) item.failure = e.e;
  else if ('v' in e) item.value = valuePreview(e.v, o);
}

/** One timeline item from an entry, its times and its completion. */
function timelineItem(
  index: number,
  e: Entry,
  t: EntryTimes,
  c: Completion | undefined,
  o: ViewOptions,
): TimelineItem {
  const item: TimelineItem = { index, kind: e.k };
  if ('n' in e && typeof e.n === 'string') item.name = e.n;
  if (t.recordedAt !== undefined) item.recordedAt = t.recordedAt;
  const waited = (): void => {
    if (t.completedAt !== undefined && t.recordedAt !== undefined) {
      item.durationMs = Math.max(0, t.completedAt - t.recordedAt);
    }
  };
  switch (e.k) {
    case 'run':
      fromEntry(e, item, o);
      if (t.stepMs !== undefined) item.durationMs = t.stepMs;
      break;
    case 'sleep':
      item.due = e.due;
      if (t.recordedAt !== undefined) item.durationMs = Math.max(0, e.due - t.recordedAt);
      break;
    case 'call':
      item.childId = e.id;
      if (c) fromCompletion(c, item, o);
      waited();
      break;
    case 'send':
      item.childId = e.id;
      break;
    case 'awk':
    case 'sig':
    case 'pget':
    case 'attach':
      if (c) fromCompletion(c, item, o);
      waited();
      break;
    case 'ppeek':
    case 'presolve':
    case 'awkResolve':
    case 'sigResolve':
      fromEntry(e, item, o);
      break;
    case 'get':
    case 'set':
    case 'keys':
    case 'comb':
    case 'signal':
      item.value = valuePreview(e.v, o);
      break;
    case 'clear':
    case 'clearAll':
    case 'cancelInv':
      break;
  }
  return item;
}

/** The journal as a timeline. */
export function timeline(d: InvocationDetail, o: ViewOptions): TimelineItem[] {
  return d.journal.map((e, i) => timelineItem(i, e, d.times[i] ?? {}, d.completions.get(i), o));
}

/** The calls and sends the invocation made (from its journal). */
export function children(journal: readonly Entry[]): ChildRef[] {
  const out: ChildRef[] = [];
  journal.forEach((e, index) => {
    if (e.k !== 'call' && e.k !== 'send') return;
    const slash = e.n.indexOf('/');
    const target: Target =
      slash < 0
        ? { service: e.n, handler: '' }
        : { service: e.n.slice(0, slash), handler: e.n.slice(slash + 1) };
    out.push({ id: e.id, index, kind: e.k, target });
  });
  return out;
}

/** The answer of `GET /invocations/{id}`. */
export function detailView(d: InvocationDetail, o: ViewOptions): Record<string, unknown> {
  const { times: _times, completions: _completions, input, failure, ...info } = d;
  const view: Record<string, unknown> = { ...info };
  if (d.target.key !== undefined && d.mode === 'workflow') view['workflowKey'] = d.target.key;
  if (input !== undefined) view['input'] = preview(input === '' ? 'null' : input, o);
  if (d.outcome) {
    view['result'] = d.outcome.ok
      ? d.outcome.value === undefined
        ? { ok: true }
        : { ok: true, value: preview(d.outcome.value, o) }
      : { ok: false, error: d.outcome.error };
  }
  if (failure) {
    const f: {
      attempt: number;
      at?: number;
      step?: StepRef;
      error: unknown;
      nextRetryAt?: number;
    } = { attempt: failure.attempt, error: failure.error };
    if (failure.at !== undefined) f.at = failure.at;
    if (failure.step) f.step = failure.step;
    if (d.nextRetryAt !== undefined) f.nextRetryAt = d.nextRetryAt;
    view['failure'] = f;
  }
  view['children'] = children(d.journal);
  view['timeline'] = timeline(d, o);
  return view;
}
