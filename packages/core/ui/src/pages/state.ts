/**
 * A key's state: each value with its size, and an editor for the whole state as one JSON object.
 * Saving sends only what changed (`POST /services/{service}/state/{key}`: a changed or new name
 * with its value, a removed name as null), which the server applies through the key's fence, or
 * refuses with 409 `KEY_BUSY` while an exclusive handler holds the key.
 */
import { api } from '../api.js';
import { h, replace, table } from '../dom.js';
import { fmtBytes, prettyJson, utf8Length } from '../format.js';
import { confirmButton, failureBox, failureText, section } from '../page.js';
import { statePatch } from '../state-patch.js';

/** Values longer than this are not drawn until asked (a huge value must not hang the page). */
const SHOW_LIMIT = 64 * 1024;
/** A state larger than this is not put in the editor (edit it with the CLI). */
const EDIT_LIMIT = 1024 * 1024;

function valueCell(text: string): HTMLElement {
  if (text.length <= SHOW_LIMIT) return h('pre', { class: 'inline state-value' }, prettyJson(text));
  const cell = h(
    'div',
    null,
    h('span', { class: 'note' }, `large value (${fmtBytes(utf8Length(text))}) `),
    h(
      'button',
      {
        type: 'button',
        class: 'quiet',
        onclick: () => replace(cell, h('pre', { class: 'inline state-value' }, text)),
      },
      'show',
    ),
  );
  return cell;
}

/** The state view and editor of `service`/`key`. */
export function stateEditor(service: string, key: string): HTMLElement {
  const view = h('div', { id: 'state' }, h('p', { class: 'empty' }, 'Loading…'));
  const out = h('div', { id: 'state-result' });
  const editor = h('textarea', {
    id: 'state-editor',
    rows: 10,
    spellcheck: 'false',
    'aria-label': 'State as JSON',
  });
  let loaded: Record<string, unknown> = {};

  const load = async (): Promise<void> => {
    let st: { state?: Record<string, unknown> };
    try {
      st = await api<{ state?: Record<string, unknown> }>(['services', service, 'state', key]);
    } catch (e) {
      replace(view, failureBox(e, 'Reading the state'));
      return;
    }
    loaded = st.state ?? {};
    const rows = Object.entries(loaded).map(([name, v]) => {
      const text = JSON.stringify(v) ?? 'null';
      return h(
        'tr',
        { 'data-name': name },
        h('td', null, h('code', null, name)),
        h('td', null, valueCell(text)),
        h('td', { class: 'num' }, fmtBytes(utf8Length(text))),
      );
    });
    replace(view, table(['Name', 'Value', 'Size'], rows, 'No state.'));
    const whole = JSON.stringify(loaded, null, 2);
    editor.disabled = whole.length > EDIT_LIMIT;
    editor.value = editor.disabled
      ? `The state is ${fmtBytes(whole.length)}: too large to edit here (use latchkey state edit).`
      : whole;
    view.dataset['loadedAt'] = String(Date.now());
  };

  const save = async (): Promise<void> => {
    let next: unknown;
    try {
      next = JSON.parse(editor.value);
    } catch (e) {
      replace(out, h('p', { class: 'error', role: 'alert' }, `Not JSON: ${(e as Error).message}`));
      return;
    }
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      replace(
        out,
        h('p', { class: 'error', role: 'alert' }, 'The state is a JSON object: { "name": value }.'),
      );
      return;
    }
    const patch = statePatch(loaded, next as Record<string, unknown>);
    if (Object.keys(patch).length === 0) {
      replace(out, h('p', { class: 'note' }, 'Nothing changed.'));
      return;
    }
    try {
      await api(['services', service, 'state', key], { method: 'POST', body: patch });
    } catch (e) {
      replace(out, h('p', { class: 'error', role: 'alert' }, `Not saved: ${failureText(e)}`));
      return;
    }
    replace(
      out,
      h(
        'p',
        { class: 'ok', role: 'status', id: 'state-saved' },
        `Saved: ${Object.keys(patch).join(', ')}`,
      ),
    );
    await load();
  };

  void load();
  return h(
    'div',
    { class: 'state-editor' },
    section(
      'State',
      h(
        'p',
        { class: 'toolbar' },
        h('button', { type: 'button', class: 'quiet', onclick: () => void load() }, 'Reload'),
        ' ',
        confirmButton(
          'Clear all',
          `Delete every value of ${service}/${key}?`,
          async () => {
            await api(['services', service, 'state', key], { method: 'DELETE' });
            await load();
            return 'cleared';
          },
          out,
          { 'data-action': 'clear-state', class: 'danger' },
        ),
      ),
      view,
    ),
    section(
      'Edit',
      h(
        'p',
        { class: 'note' },
        'The whole state as one JSON object. Saving sends what changed (a removed name, or null, deletes); ',
        'the server refuses while an exclusive handler holds the key.',
      ),
      editor,
      h(
        'p',
        null,
        h('button', { type: 'button', id: 'save-state', onclick: () => void save() }, 'Save'),
      ),
      out,
    ),
  );
}
