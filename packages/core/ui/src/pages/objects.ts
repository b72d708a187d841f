/**
 * Objects and their keys: the virtual objects this server serves, the keys of one (inbox length,
 * the invocation holding each key), and one key (its state, view and edit; the invocation holding
 * it and its queue in the order they will run; its recent invocations).
 */
import { api } from '../api.js';
import { h, link, replace, routeHref, table } from '../dom.js';
import { keepFresh } from '../live.js';
import { failureBox, section, showLive, type Page } from '../page.js';
import type { InvocationPage, InvocationSummary, KeyInfo, ServiceInfo } from '../types.js';
import { invocationTable } from './invocations.js';
import { stateEditor } from './state.js';

/** The services of one kind (`GET /services`), or a failure box. */
export async function servicesOfKind(kind: string): Promise<ServiceInfo[]> {
  const r = await api<{ services?: ServiceInfo[] }>(['services']);
  return (r.services ?? []).filter((s) => s.kind === kind);
}

/** A form that opens a key by name (also where the server cannot list keys). */
export function openKeyForm(area: 'objects' | 'workflows', service?: string): HTMLElement {
  const svc = h('input', {
    name: 'service',
    value: service ?? '',
    placeholder: 'name',
    required: true,
  });
  const key = h('input', { name: 'key', placeholder: 'key', required: true });
  return h(
    'form',
    {
      class: 'filters open-key',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        location.hash = routeHref([area, svc.value.trim(), key.value]);
      },
    },
    service === undefined ? h('label', null, 'Name ', svc) : null,
    h('label', null, 'Key ', key),
    h('button', { type: 'submit' }, 'Open'),
  );
}

/** A list of services as a table linking to their pages under `area`. */
export function serviceTable(services: readonly ServiceInfo[], area: string): HTMLElement {
  return table(
    ['Name', 'Handlers', 'Description'],
    services.map((s) =>
      h(
        'tr',
        { 'data-service': s.name },
        h('td', null, link([area, s.name], s.name)),
        h('td', null, s.handlers.map((x) => x.name).join(', ')),
        h('td', null, s.description ?? ''),
      ),
    ),
    'None served here.',
  );
}

/** The objects page. */
export function objectsPage(): Page {
  const list = h('div', { id: 'objects' }, h('p', { class: 'empty' }, 'Loading…'));
  servicesOfKind('object').then(
    (s) => replace(list, serviceTable(s, 'objects')),
    (e: unknown) => replace(list, failureBox(e, 'Listing objects')),
  );
  return {
    el: h(
      'div',
      null,
      h('h1', null, 'Objects'),
      list,
      section('Open a key', openKeyForm('objects')),
    ),
  };
}

/** The keys of `service` with their inbox and holder (a page at a time). */
export function keysTable(
  service: string,
  area: 'objects' | 'workflows',
): { el: HTMLElement; load: () => Promise<void> } {
  const el = h('div', { id: 'keys' }, h('p', { class: 'empty' }, 'Loading…'));
  let limit = 100;
  const load = async (): Promise<void> => {
    let r: { keys?: KeyInfo[]; nextCursor?: string };
    try {
      r = await api<typeof r>(['services', service, 'keys'], { query: { limit: String(limit) } });
    } catch (e) {
      replace(el, failureBox(e, 'Listing keys'));
      return;
    }
    const rows = (r.keys ?? []).map((k) =>
      h(
        'tr',
        { 'data-key': k.key },
        h('td', null, link([area, service, k.key], k.key)),
        h('td', { class: 'num' }, String(k.inbox ?? 0)),
        h('td', null, k.holder ? link(['invocations', k.holder], k.holder, { class: 'id' }) : ''),
      ),
    );
    replace(
      el,
      table(['Key', 'Inbox', 'Held by'], rows, 'No keys with state, a holder or an inbox.'),
      r.nextCursor
        ? h(
            'button',
            {
              type: 'button',
              class: 'quiet',
              onclick: () => {
                limit = Math.min(limit * 2, 1000);
                void load();
              },
            },
            'More',
          )
        : null,
    );
  };
  return { el, load };
}

/** The page of object `service`: its keys. */
export function objectPage(service: string): Page {
  const keys = keysTable(service, 'objects');
  const stop = keepFresh(keys.load, { filter: { service }, onMode: showLive, pollMs: 5000 });
  return {
    el: h(
      'div',
      null,
      h('h1', null, 'Object ', h('code', null, service)),
      section('Keys', keys.el),
      section('Open a key', openKeyForm('objects', service)),
    ),
    dispose: stop,
  };
}

/** The invocations of one key, newest first. */
export function keyInvocations(
  service: string,
  key: string,
): {
  el: HTMLElement;
  load: () => Promise<void>;
} {
  const el = h('div', { id: 'key-invocations' });
  const load = async (): Promise<void> => {
    try {
      const r = await api<InvocationPage>(['invocations'], {
        query: { service, key, limit: '20' },
      });
      replace(el, invocationTable(r.invocations ?? [], 'No invocations of this key.'));
    } catch (e) {
      replace(el, failureBox(e, 'Listing invocations'));
    }
  };
  return { el, load };
}

/** The page of one object key: queue, state, recent invocations. */
export function keyPage(service: string, key: string): Page {
  const queue = h('div', { id: 'queue' });
  const recent = keyInvocations(service, key);
  const loadQueue = async (): Promise<void> => {
    try {
      const r = await api<{ holder?: string; queue?: InvocationSummary[] }>([
        'services',
        service,
        'keys',
        key,
        'queue',
      ]);
      replace(
        queue,
        h(
          'p',
          null,
          'Held by ',
          r.holder ? link(['invocations', r.holder], r.holder, { class: 'id' }) : 'nobody',
        ),
        invocationTable(r.queue ?? [], 'Nothing waits for this key.'),
      );
    } catch (e) {
      replace(queue, failureBox(e, 'Reading the queue'));
    }
  };
  const stop = keepFresh(() => Promise.all([loadQueue(), recent.load()]).then(() => undefined), {
    filter: { service },
    accept: (e) => e.key === undefined || e.key === key,
    onMode: showLive,
    pollMs: 5000,
  });
  return {
    el: h(
      'div',
      null,
      h(
        'h1',
        null,
        h('a', { href: routeHref(['objects', service]) }, service),
        ' / ',
        h('code', null, key),
      ),
      stateEditor(service, key),
      section('Inbox', queue),
      section('Recent invocations', recent.el),
    ),
    dispose: stop,
  };
}
