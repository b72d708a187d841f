/**
 * The web UI's entry: the token (asked once per tab, or given as `#token=…`), the shell (header,
 * navigation) and the router over hash routes (`#/invocations`, `#/invocations/{id}`,
 * `#/objects/{service}/{key}`, `#/workflows/{name}/{key}`, `#/services/{name}`). Each page builds
 * its own element and stops its live updates when the operator leaves it.
 */
import { ApiError, api, getToken, setToken, takeTokenFromHash, whenUnauthorized } from './api.js';
import { h, replace } from './dom.js';
import type { Page } from './page.js';
import { invocationsPage } from './pages/invocations.js';
import { invocationPage } from './pages/invocation.js';
import { keyPage, objectPage, objectsPage } from './pages/objects.js';
import { servicePage, servicesPage } from './pages/services.js';
import { runPage, workflowPage, workflowsPage } from './pages/workflows.js';

const root = document.getElementById('app')!;
let current: Page | undefined;

/** The route in the address: decoded path segments and the query. */
function parseHash(): { segs: string[]; query: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const segs = path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segs, query: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
}

/** The page for a route. */
function pageFor(segs: string[], query: URLSearchParams): Page {
  const [top, a, b] = segs;
  switch (top) {
    case undefined:
    case 'invocations':
      return a === undefined ? invocationsPage(query) : invocationPage(a, query);
    case 'objects':
      if (a === undefined) return objectsPage();
      return b === undefined ? objectPage(a) : keyPage(a, b);
    case 'workflows':
      if (a === undefined) return workflowsPage();
      return b === undefined ? workflowPage(a) : runPage(a, b);
    case 'services':
      return a === undefined ? servicesPage() : servicePage(a);
    default:
      return { el: h('p', { class: 'error' }, `No page at ${location.hash}`) };
  }
}

const NAV: ReadonlyArray<readonly [string, string]> = [
  ['invocations', 'Invocations'],
  ['objects', 'Objects'],
  ['workflows', 'Workflows'],
  ['services', 'Services'],
];

/** The header: navigation (the current section marked) and the way to forget the token. */
function shell(section: string): HTMLElement {
  return h(
    'header',
    null,
    h('a', { class: 'brand', href: '#/invocations' }, 'Latchkey'),
    h(
      'nav',
      null,
      NAV.map(([id, label]) =>
        h('a', { href: `#/${id}`, class: id === section ? 'active' : null }, label),
      ),
    ),
    h('span', { id: 'live', class: 'live' }),
    getToken()
      ? h(
          'button',
          {
            type: 'button',
            class: 'quiet',
            id: 'forget-token',
            onclick: () => {
              setToken(undefined);
              showTokenForm();
            },
          },
          'Forget token',
        )
      : null,
  );
}

/** Shows the page the address names (stopping the one before). */
function route(): void {
  current?.dispose?.();
  const { segs, query } = parseHash();
  const page = pageFor(segs, query);
  current = page;
  replace(root, shell(segs[0] ?? 'invocations'), h('main', { id: 'page' }, page.el));
}

/** Asks for the admin token; checks it against the API before keeping it. */
function showTokenForm(problem?: string): void {
  current?.dispose?.();
  current = undefined;
  const input = h('input', {
    type: 'password',
    id: 'token-input',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
    placeholder: 'LATCHKEY_ADMIN_TOKEN',
  });
  const message = h('p', { id: 'token-error', class: 'error', role: 'alert' }, problem ?? '');
  const form = h(
    'form',
    {
      id: 'token-form',
      class: 'card narrow',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const token = input.value;
        message.textContent = 'Checking…';
        api(['invocations'], { query: { limit: '1' }, token }).then(
          () => {
            setToken(token);
            route();
          },
          (e: unknown) => {
            message.textContent =
              e instanceof ApiError && e.status === 401
                ? 'The admin API refused this token.'
                : `Could not check the token: ${(e as Error).message}`;
          },
        );
      },
    },
    h('h1', null, 'Latchkey admin'),
    h(
      'p',
      null,
      'The admin API wants its bearer token (admin.token or LATCHKEY_ADMIN_TOKEN). ',
      'It is kept in this tab only.',
    ),
    h('label', { for: 'token-input' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Open'),
    message,
  );
  replace(root, h('main', { id: 'page' }, form));
  input.focus();
}

async function boot(): Promise<void> {
  takeTokenFromHash();
  whenUnauthorized(() =>
    showTokenForm(getToken() ? 'The admin API refused the token.' : undefined),
  );
  window.addEventListener('hashchange', () => {
    if (root.querySelector('#token-form') === null) route();
  });
  try {
    await api(['invocations'], { query: { limit: '1' }, token: getToken() ?? '' });
    route();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showTokenForm(getToken() ? 'The admin API refused the token.' : undefined);
    } else route();
  }
}

void boot();
