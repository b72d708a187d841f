/**
 * An invocation's journal as a timeline (each entry's kind, name, time, duration, result or
 * failure, child) and the failure of its last attempt, with the step where it failed and the
 * stack. Servers before the timeline answered a raw `journal`; that is shown as it is.
 */
import { h, link, table, type Child } from '../dom.js';
import { asPreview, fmtDuration, fmtError, fmtTime, prettyJson, when } from '../format.js';
import type { ErrorInfo, FailureInfo, InvocationDetail, TimelineItem } from '../types.js';

/** A step as `#2 run "charge"`. */
function stepLabel(step: { index: number; kind: string; name?: string }): Child {
  return [
    `#${step.index} ${step.kind} `,
    step.name !== undefined ? h('code', { class: 'step-name' }, step.name) : null,
  ];
}

/** The failure of the last failed attempt (or, from older servers, its last error). */
export function failurePanel(inv: InvocationDetail): HTMLElement | null {
  const f: FailureInfo | undefined =
    inv.failure ?? (inv.lastFailure ? { error: inv.lastFailure } : undefined);
  if (!f || (inv.status === 'completed' && inv.outcome?.ok)) return null;
  const err: ErrorInfo = f.error ?? {};
  const next = f.nextRetryAt ?? inv.nextRetryAt;
  return h(
    'section',
    { id: 'failure', class: 'failure-panel' },
    h(
      'h2',
      null,
      f.attempt !== undefined ? `Attempt ${f.attempt} failed` : 'Last failure',
      f.step ? [' at step ', stepLabel(f.step)] : inv.failure ? ' (outside a step)' : null,
    ),
    h(
      'p',
      { class: 'error-line' },
      fmtError(err),
      err.code !== undefined ? ` (code ${err.code})` : '',
    ),
    f.at !== undefined ? h('p', null, 'Failed ', when(f.at)) : null,
    next !== undefined && inv.status !== 'completed'
      ? h('p', null, 'Next retry ', when(next))
      : null,
    err.stack ? h('pre', { class: 'stack' }, err.stack) : null,
  );
}

function valueCell(item: TimelineItem): Child {
  if (item.failure) return h('span', { class: 'bad' }, fmtError(item.failure));
  const p = asPreview(item.value);
  if (!p) return null;
  const text = prettyJson(p.json, p.truncated === true);
  return h(
    'pre',
    { class: 'inline' },
    text.length > 400 ? `${text.slice(0, 400)}…` : text,
    p.truncated ? ` … (${p.bytes ?? '?'} bytes)` : '',
  );
}

function durationCell(ms: number | undefined, longest: number): Child {
  if (ms === undefined) return null;
  const bar = h('span', { class: 'bar' });
  bar.style.setProperty('width', `${Math.max(2, Math.round((ms / Math.max(longest, 1)) * 80))}px`);
  return [bar, ' ', fmtDuration(ms)];
}

/** The timeline table (the failing step marked; a failing step with no entry yet appended). */
export function timelineTable(inv: InvocationDetail): HTMLElement {
  const items = inv.timeline;
  if (!items) return rawJournal(inv.journal ?? []);
  const failStep = inv.status !== 'completed' ? inv.failure?.step : undefined;
  const longest = Math.max(0, ...items.map((i) => i.durationMs ?? 0));
  const start = inv.createdAt;
  const rows = items.map((item) =>
    h(
      'tr',
      {
        'data-index': item.index,
        'data-kind': item.kind,
        class: failStep?.index === item.index ? 'failing' : null,
      },
      h('td', { class: 'num' }, String(item.index)),
      h('td', null, item.kind),
      h('td', null, item.name ?? ''),
      h(
        'td',
        { title: fmtTime(item.recordedAt) ?? '' },
        item.recordedAt !== undefined && start !== undefined
          ? `+${fmtDuration(item.recordedAt - start)}`
          : '',
      ),
      h('td', null, durationCell(item.durationMs, longest)),
      h('td', null, valueCell(item)),
      h(
        'td',
        null,
        item.childId ? link(['invocations', item.childId], item.childId, { class: 'id' }) : null,
        item.due !== undefined ? ['due ', fmtTime(item.due)] : null,
      ),
    ),
  );
  if (failStep && !items.some((i) => i.index === failStep.index)) {
    // The step that failed committed nothing: it has no entry yet, show where it is.
    rows.push(
      h(
        'tr',
        { 'data-index': failStep.index, 'data-kind': failStep.kind, class: 'failing pending' },
        h('td', { class: 'num' }, String(failStep.index)),
        h('td', null, failStep.kind),
        h('td', null, failStep.name ?? ''),
        h('td', null, ''),
        h('td', null, `failing (attempt ${inv.failure?.attempt ?? inv.attempts ?? '?'})`),
        h('td', null, h('span', { class: 'bad' }, fmtError(inv.failure?.error))),
        h('td', null, ''),
      ),
    );
  }
  return table(
    ['#', 'Kind', 'Name', 'Recorded', 'Duration', 'Result', 'Child / due'],
    rows,
    'No journal entries yet.',
  );
}

function kindOf(e: Record<string, unknown>): string {
  return typeof e['k'] === 'string' ? e['k'] : '';
}

/** A journal as older servers answer it: entries `{ k, n, … }`. */
function rawJournal(entries: ReadonlyArray<Record<string, unknown>>): HTMLElement {
  return table(
    ['#', 'Kind', 'Name', 'Entry'],
    entries.map((e, i) =>
      h(
        'tr',
        { 'data-index': i, 'data-kind': kindOf(e) },
        h('td', { class: 'num' }, String(i)),
        h('td', null, kindOf(e)),
        h('td', null, typeof e['n'] === 'string' ? e['n'] : ''),
        h('td', null, h('pre', { class: 'inline' }, JSON.stringify(e).slice(0, 400))),
      ),
    ),
    'No journal entries yet.',
  );
}
