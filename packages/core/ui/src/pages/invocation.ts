/**
 * One invocation: its target, status and times, the failure of its last attempt with the step and
 * stack, the journal timeline, parent and children, input and output, and the actions an operator
 * may take (cancel, kill, pause, resume, purge, restart as new). Re-read live.
 */
import { ApiError, api } from '../api.js';
import { facts, h, link, replace, routeHref } from '../dom.js';
import { asPreview, fmtError, fmtTarget, previewBlock, statusBadge, when } from '../format.js';
import { keepFresh } from '../live.js';
import { confirmButton, failureBox, section, showLive, type Page } from '../page.js';
import type { InvocationDetail } from '../types.js';
import { failurePanel, timelineTable } from './timeline.js';

/** The actions that fit a status (the server refuses the others with 409 anyway). */
function actionsFor(status: string): string[] {
  if (status === 'completed') return ['restart-as-new', 'purge'];
  if (status === 'paused') return ['resume', 'cancel', 'kill'];
  return ['cancel', 'pause', 'kill'];
}

const QUESTIONS: Record<string, string> = {
  cancel: 'Cancel it? Its handler sees a CancelledError at its next await (compensations run).',
  kill: 'Kill it and its call tree at once? Nothing more of it runs.',
  pause: 'Pause it? It stops after its current attempt until resumed.',
  resume: 'Resume it?',
  purge: 'Purge its record, journal and dedupe records now?',
  'restart-as-new': 'Start it again as a new invocation with the same input?',
};

function actionBar(id: string, status: string, out: HTMLElement, reload: () => void): HTMLElement {
  const prefix = h('input', {
    type: 'number',
    min: 0,
    id: 'keep-prefix',
    placeholder: 'all new',
    size: 6,
  });
  return h(
    'div',
    { class: 'actions', id: 'actions', 'data-for-status': status },
    actionsFor(status).map((op) =>
      op === 'restart-as-new'
        ? h(
            'span',
            { class: 'restart' },
            confirmButton(
              'Restart as new',
              QUESTIONS[op]!,
              async () => {
                const n = prefix.value.trim();
                const r = await api<{ invocationId: string }>(
                  ['invocations', id, 'restart-as-new'],
                  { method: 'POST', body: n === '' ? {} : { keepPrefix: Number(n) } },
                );
                location.hash = routeHref(['invocations', r.invocationId]);
                return `restarted as ${r.invocationId}`;
              },
              out,
              { 'data-action': op },
            ),
            h('label', null, ' keeping the first ', prefix, ' journal entries'),
          )
        : confirmButton(
            op[0]!.toUpperCase() + op.slice(1),
            QUESTIONS[op]!,
            async () => {
              await api(['invocations', id, op], { method: 'PATCH' });
              reload();
              return `${op}: done`;
            },
            out,
            { 'data-action': op, class: op === 'kill' || op === 'purge' ? 'danger' : '' },
          ),
    ),
  );
}

function details(inv: InvocationDetail): HTMLElement {
  return facts([
    ['Target', fmtTarget(inv.target)],
    ['Mode', inv.mode],
    ['Status', statusBadge(inv.status)],
    ['Attempts', String(inv.attempts ?? 0)],
    ['Idempotency key', inv.idempotencyKey],
    ['Workflow key', inv.workflowKey],
    [
      'Trace',
      inv.traceId !== undefined ? h('span', { class: 'id trace-id' }, inv.traceId) : undefined,
    ],
    ['Created', when(inv.createdAt)],
    ['First started', when(inv.firstStartedAt)],
    ['Last started', when(inv.lastStartedAt)],
    ['Modified', when(inv.modifiedAt)],
    ['Completed', when(inv.completedAt)],
    ['Next retry', inv.status === 'completed' ? undefined : when(inv.nextRetryAt)],
    [
      'Invoked by',
      inv.invokedBy
        ? [
            link(['invocations', inv.invokedBy.id], inv.invokedBy.id, { class: 'id' }),
            inv.invokedBy.index !== undefined ? ` (entry #${inv.invokedBy.index})` : '',
          ]
        : undefined,
    ],
  ]);
}

function children(inv: InvocationDetail): HTMLElement | null {
  const list = inv.children ?? [];
  if (list.length === 0) return null;
  return section(
    'Children',
    h(
      'ul',
      { id: 'children' },
      list.map((c) =>
        h(
          'li',
          null,
          link(['invocations', c.id], c.id, { class: 'id' }),
          ` ${c.kind ?? ''} ${fmtTarget(c.target)}`,
          c.index !== undefined ? ` (entry #${c.index})` : '',
        ),
      ),
    ),
  );
}

function outcome(inv: InvocationDetail): HTMLElement {
  const o = inv.outcome;
  if (!o) return h('p', { class: 'empty' }, 'Not completed yet.');
  if (!o.ok)
    return h(
      'div',
      { id: 'outcome', 'data-ok': 'false' },
      h('p', { class: 'bad' }, fmtError(o.error)),
      o.error?.stack ? h('pre', { class: 'stack' }, o.error.stack) : null,
    );
  return h('div', { id: 'outcome', 'data-ok': 'true' }, previewBlock(asPreview(o.value)));
}

/** The page of invocation `id` (`?full=1`: values whole, not previews). */
export function invocationPage(id: string, query: URLSearchParams): Page {
  const full = query.get('full') === '1';
  const body = h('div', { id: 'detail' }, h('p', { class: 'empty' }, 'Loading…'));
  const out = h('div', { class: 'action-result', id: 'action-result' });
  const actions = h('div');
  let shownStatus: string | undefined;
  let refresh: () => void = () => undefined;

  const load = async (): Promise<void> => {
    let inv: InvocationDetail;
    try {
      inv = await api<InvocationDetail>(['invocations', id], {
        query: { full: full ? '1' : undefined },
      });
    } catch (e) {
      shownStatus = undefined;
      replace(actions);
      replace(
        body,
        e instanceof ApiError && e.status === 404
          ? h(
              'p',
              { class: 'empty', id: 'gone' },
              `Invocation ${id} not found (purged or expired).`,
            )
          : failureBox(e, 'Reading the invocation'),
      );
      return;
    }
    if (inv.status !== shownStatus) {
      // Only redrawn when the status changes: a confirmation in progress survives re-reads.
      shownStatus = inv.status;
      replace(actions, actionBar(id, inv.status, out, refresh));
    }
    const q = new URLSearchParams(full ? {} : { full: '1' });
    replace(
      body,
      h(
        'p',
        { class: 'subtitle' },
        fmtTarget(inv.target),
        ' ',
        statusBadge(inv.status),
        ' ',
        h(
          'a',
          { href: routeHref(['invocations', id], q), class: 'button quiet' },
          full ? 'Previews' : 'Full values',
        ),
      ),
      details(inv),
      failurePanel(inv),
      section('Journal', h('div', { id: 'timeline' }, timelineTable(inv))),
      children(inv),
      h(
        'div',
        { class: 'columns' },
        section('Input', h('div', { id: 'input' }, previewBlock(asPreview(inv.input)))),
        section('Output', outcome(inv)),
      ),
    );
    body.dataset['status'] = inv.status;
  };
  refresh = () => void load();
  const stop = keepFresh(load, {
    filter: { id },
    accept: (e) => e.id === undefined || e.id === id,
    pollMs: 2000,
    onMode: showLive,
  });
  const el = h('div', null, h('h1', null, 'Invocation ', h('code', null, id)), actions, out, body);
  return { el, dispose: stop };
}
