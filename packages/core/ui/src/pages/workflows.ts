/**
 * Workflows: the workflows served here, the runs of one (one per key), and one run (its `run`
 * invocation, its durable promises, its state and the shared handlers' invocations on its key).
 */
import { api } from '../api.js';
import { h, link, replace, routeHref, table } from '../dom.js';
import { asPreview, fmtAgo, fmtError, previewBlock, statusBadge } from '../format.js';
import { keepFresh } from '../live.js';
import { failureBox, section, showLive, type Page } from '../page.js';
import type { InvocationPage, PromiseInfo } from '../types.js';
import { keyInvocations, openKeyForm, serviceTable, servicesOfKind } from './objects.js';
import { stateEditor } from './state.js';

/** The workflows page. */
export function workflowsPage(): Page {
  const list = h('div', { id: 'workflows' }, h('p', { class: 'empty' }, 'Loading…'));
  servicesOfKind('workflow').then(
    (s) => replace(list, serviceTable(s, 'workflows')),
    (e: unknown) => replace(list, failureBox(e, 'Listing workflows')),
  );
  return {
    el: h(
      'div',
      null,
      h('h1', null, 'Workflows'),
      list,
      section('Open a run', openKeyForm('workflows')),
    ),
  };
}

/** The runs of workflow `name`, newest first, one per key. */
export function workflowPage(name: string): Page {
  const runs = h('div', { id: 'runs' }, h('p', { class: 'empty' }, 'Loading…'));
  const load = async (): Promise<void> => {
    try {
      const r = await api<InvocationPage>(['invocations'], {
        query: { service: name, handler: 'run', limit: '100' },
      });
      const rows = (r.invocations ?? []).map((inv) =>
        h(
          'tr',
          { 'data-id': inv.id, 'data-key': inv.target.key ?? '', 'data-status': inv.status },
          h('td', null, link(['workflows', name, inv.target.key ?? ''], inv.target.key ?? '')),
          h('td', null, link(['invocations', inv.id], inv.id, { class: 'id' })),
          h('td', null, statusBadge(inv.status)),
          h('td', { class: 'num' }, String(inv.attempts ?? 0)),
          h('td', { class: 'failure' }, inv.lastFailure ? fmtError(inv.lastFailure) : ''),
          h('td', null, fmtAgo(inv.createdAt) ?? ''),
        ),
      );
      replace(
        runs,
        table(['Key', 'Run', 'Status', 'Attempts', 'Last failure', 'Created'], rows, 'No runs.'),
      );
    } catch (e) {
      replace(runs, failureBox(e, 'Listing runs'));
    }
  };
  const stop = keepFresh(load, { filter: { service: name }, onMode: showLive });
  return {
    el: h(
      'div',
      null,
      h('h1', null, 'Workflow ', h('code', null, name)),
      section('Runs', runs),
      section('Open a run', openKeyForm('workflows', name)),
    ),
    dispose: stop,
  };
}

function promisesTable(list: readonly PromiseInfo[]): HTMLElement {
  return table(
    ['Promise', 'State', 'Value or error'],
    list.map((p) =>
      h(
        'tr',
        { 'data-promise': p.name, 'data-state': p.state },
        h('td', null, h('code', null, p.name)),
        h('td', null, statusBadge(p.state)),
        h(
          'td',
          null,
          p.state === 'rejected'
            ? h('span', { class: 'bad' }, fmtError(p.error))
            : p.value
              ? previewBlock(asPreview(p.value))
              : '',
        ),
      ),
    ),
    'No durable promises yet.',
  );
}

/** One run of workflow `name` with key `key`. */
export function runPage(name: string, key: string): Page {
  const run = h('div', { id: 'run' });
  const promises = h('div', { id: 'promises' });
  const others = keyInvocations(name, key);
  const load = async (): Promise<void> => {
    const [r, p] = await Promise.allSettled([
      api<InvocationPage>(['invocations'], {
        query: { service: name, key, handler: 'run', limit: '1' },
      }),
      api<{ promises?: PromiseInfo[] }>(['services', name, 'keys', key, 'promises']),
    ]);
    if (r.status === 'fulfilled') {
      const inv = r.value.invocations?.[0];
      replace(
        run,
        inv
          ? h(
              'p',
              { 'data-id': inv.id, 'data-status': inv.status },
              link(['invocations', inv.id], inv.id, { class: 'id' }),
              ' ',
              statusBadge(inv.status),
              inv.lastFailure ? h('span', { class: 'bad' }, ' ', fmtError(inv.lastFailure)) : null,
            )
          : h('p', { class: 'empty' }, 'No run with this key (not started, or expired).'),
      );
    } else replace(run, failureBox(r.reason, 'Finding the run'));
    if (p.status === 'fulfilled') replace(promises, promisesTable(p.value.promises ?? []));
    else replace(promises, failureBox(p.reason, 'Reading the promises'));
    await others.load();
  };
  const stop = keepFresh(load, {
    filter: { service: name },
    accept: (e) => e.key === undefined || e.key === key,
    onMode: showLive,
  });
  return {
    el: h(
      'div',
      null,
      h(
        'h1',
        null,
        h('a', { href: routeHref(['workflows', name]) }, name),
        ' / ',
        h('code', null, key),
      ),
      section('Run', run),
      section('Promises', promises),
      stateEditor(name, key),
      section('Invocations on this key', others.el),
    ),
    dispose: stop,
  };
}
