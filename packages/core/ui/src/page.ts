/**
 * What every page shares: the {@link Page} shape the router shows, failure messages, the live
 * indicator, and a button that asks for confirmation in place (no browser dialogs).
 */
import { ApiError } from './api.js';
import { h, replace, type Child } from './dom.js';
import type { LiveMode } from './live.js';

/** A page: its element, and what stops its timers and streams when the operator leaves. */
export interface Page {
  el: HTMLElement;
  dispose?(): void;
}

/** A failure as the operator reads it: `404 NOT_FOUND: invocation … not found`. */
export function failureText(e: unknown): string {
  if (e instanceof ApiError)
    return e.status === 0 ? e.message : `${e.status} ${e.code}: ${e.message}`;
  return String((e as Error)?.message ?? e);
}

/** A failure box (`.error`, `role=alert`). */
export function failureBox(e: unknown, what?: string): HTMLElement {
  return h('p', { class: 'error', role: 'alert' }, what ? `${what}: ` : '', failureText(e));
}

/** Shows how the page is kept fresh in the header's indicator. */
export function showLive(mode: LiveMode): void {
  const el = document.getElementById('live');
  if (!el) return;
  const text: Record<LiveMode, string> = {
    connecting: 'connecting…',
    live: '● live',
    polling: '◌ polling',
    reconnecting: 'reconnecting…',
    stopped: '',
  };
  el.textContent = text[mode];
  el.dataset['mode'] = mode;
}

/**
 * A button that asks "sure?" in place before `act` runs, then shows what came of it in `out`.
 * `act` returns the text to show on success.
 */
export function confirmButton(
  label: string,
  question: string,
  act: () => Promise<string>,
  out: HTMLElement,
  attrs: Record<string, string> = {},
): HTMLElement {
  const wrap = h('span', { class: 'confirm' });
  const idle = (): void =>
    replace(wrap, h('button', { type: 'button', ...attrs, onclick: () => ask() }, label));
  const ask = (): void =>
    replace(
      wrap,
      h('span', { class: 'question' }, question, ' '),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          'data-confirm': attrs['data-action'] ?? label,
          onclick: () => {
            replace(wrap, h('span', { class: 'busy' }, `${label}…`));
            act().then(
              (text) => {
                replace(out, h('p', { class: 'ok', role: 'status' }, text));
                idle();
              },
              (e: unknown) => {
                replace(out, failureBox(e, label));
                idle();
              },
            );
          },
        },
        'Yes',
      ),
      ' ',
      h('button', { type: 'button', class: 'quiet', onclick: () => idle() }, 'No'),
    );
  idle();
  return wrap;
}

/** A titled section. */
export function section(title: Child, ...children: Child[]): HTMLElement {
  return h('section', null, h('h2', null, title), ...children);
}
