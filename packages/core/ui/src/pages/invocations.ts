/**
 * The invocations page: filters (status, service, handler, key) kept in the address, counts per
 * status, and the list, re-read whenever `GET /events` says something changed.
 */
import { api } from '../api.js';
import { h, link, replace, routeHref, table } from '../dom.js';
import { fmtAgo, fmtError, fmtTarget, statusBadge } from '../format.js';
import { keepFresh } from '../live.js';
import { failureBox, showLive, type Page } from '../page.js';
import { bulkBar } from './bulk.js';
import { STATUSES, type Counts, type InvocationPage, type InvocationSummary } from '../types.js';

/** The filters of the list that live in the address. */
const FILTERS = ['status', 'service', 'handler', 'key'] as const;

/** How many rows a page of the list shows. */
const PAGE_SIZE = 50;

/** One row of the list. */
export function invocationRow(inv: InvocationSummary): HTMLTableRowElement {
  const failure = inv.lastFailure ? fmtError(inv.lastFailure) : '';
  return h(
    'tr',
    { 'data-id': inv.id, 'data-status': inv.status },
    h('td', null, link(['invocations', inv.id], inv.id, { class: 'id' })),
    h('td', null, fmtTarget(inv.target)),
    h('td', null, statusBadge(inv.status)),
    h('td', { class: 'num' }, String(inv.attempts ?? 0)),
    h(
      'td',
      { class: 'failure', title: failure },
      failure.length > 140 ? `${failure.slice(0, 140)}…` : failure,
    ),
    h('td', null, fmtAgo(inv.createdAt) ?? ''),
    h('td', null, fmtAgo(inv.modifiedAt) ?? ''),
  );
}

/** The list's table. */
export function invocationTable(rows: readonly InvocationSummary[], empty?: string): HTMLElement {
  return table(
    ['Invocation', 'Target', 'Status', 'Attempts', 'Last failure', 'Created', 'Modified'],
    rows.map(invocationRow),
    empty ?? 'No invocations match.',
  );
}

function filterForm(query: URLSearchParams): HTMLElement {
  const field = (name: string, label: string): HTMLElement =>
    h(
      'label',
      null,
      label,
      h('input', { name, value: query.get(name) ?? '', placeholder: 'any', size: 14 }),
    );
  const status = h(
    'select',
    { name: 'status' },
    h('option', { value: '' }, 'any'),
    STATUSES.map((s) => h('option', { value: s, selected: query.get('status') === s }, s)),
  );
  const form = h(
    'form',
    {
      class: 'filters',
      id: 'filters',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const q = new URLSearchParams();
        const data = new FormData(form);
        for (const f of FILTERS) {
          const got = data.get(f);
          const v = typeof got === 'string' ? got.trim() : '';
          if (v !== '') q.set(f, v);
        }
        location.hash = routeHref(['invocations'], q);
      },
    },
    h('label', null, 'Status', status),
    field('service', 'Service'),
    field('handler', 'Handler'),
    field('key', 'Key'),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '#/invocations', class: 'button quiet' }, 'Clear'),
  );
  return form;
}

function countsBar(counts: Counts, query: URLSearchParams): HTMLElement {
  const chip = (status: string | undefined, label: string, n: number | undefined): HTMLElement => {
    const q = new URLSearchParams(query);
    if (status) q.set('status', status);
    else q.delete('status');
    const active = (query.get('status') ?? undefined) === status;
    return h(
      'a',
      {
        href: routeHref(['invocations'], q),
        class: `chip${active ? ' active' : ''}`,
        'data-count': status ?? 'all',
      },
      label,
      h('b', null, String(n ?? 0)),
    );
  };
  const by = counts.byStatus ?? {};
  return h(
    'div',
    { class: 'counts', id: 'counts' },
    chip(undefined, 'all ', counts.total ?? Object.values(by).reduce((a, b) => a + b, 0)),
    STATUSES.map((s) => chip(s, `${s} `, by[s])),
  );
}

/** The invocations page for the filters in `query`. */
export function invocationsPage(query: URLSearchParams): Page {
  const filter: Record<string, string | undefined> = {};
  for (const f of FILTERS) filter[f] = query.get(f) ?? undefined;
  const countsEl = h('div', { class: 'counts' });
  const listEl = h('div', { id: 'invocations' }, h('p', { class: 'empty' }, 'Loading…'));
  const pager = h('div', { class: 'pager' });
  /** Cursors of the pages before this one (the first page has none). */
  const cursors: string[] = [];
  let cursor: string | undefined;

  const load = async (): Promise<void> => {
    const countsQuery = { service: filter['service'] };
    const [list, counts] = await Promise.allSettled([
      api<InvocationPage>(['invocations'], {
        query: { ...filter, limit: String(PAGE_SIZE), cursor },
      }),
      api<Counts>(['invocations', 'counts'], { query: countsQuery }),
    ]);
    if (counts.status === 'fulfilled') replace(countsEl, countsBar(counts.value, query));
    else replace(countsEl, h('p', { class: 'note' }, 'Counts are not available on this server.'));
    if (list.status === 'rejected') {
      replace(listEl, failureBox(list.reason, 'Listing invocations'));
      return;
    }
    const page = list.value;
    replace(listEl, invocationTable(page.invocations ?? []));
    listEl.dataset['loadedAt'] = String(Date.now());
    replace(
      pager,
      cursors.length > 0
        ? h(
            'button',
            { type: 'button', class: 'quiet', onclick: () => go(cursors.pop()) },
            '← Newer',
          )
        : null,
      page.nextCursor
        ? h(
            'button',
            {
              type: 'button',
              class: 'quiet',
              onclick: () => {
                cursors.push(cursor ?? '');
                go(page.nextCursor);
              },
            },
            'Older →',
          )
        : null,
    );
  };
  const go = (c: string | undefined): void => {
    cursor = c === '' ? undefined : c;
    void load().catch(() => undefined);
  };
  const el = h(
    'div',
    null,
    h('h1', null, 'Invocations'),
    filterForm(query),
    h('details', { class: 'bulk-box' }, h('summary', null, 'Act on every match'), bulkBar(filter)),
    countsEl,
    listEl,
    pager,
  );
  const stop = keepFresh(load, {
    filter: { service: filter['service'] },
    onMode: showLive,
  });
  return { el, dispose: stop };
}
