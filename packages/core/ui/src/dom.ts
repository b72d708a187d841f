/**
 * The UI's only way to build DOM: elements from a tag, attributes and children, where every
 * string becomes a text node or an attribute value and never markup. Everything the admin API
 * answers is user data (state values, error messages, keys) and hostile until shown otherwise;
 * nothing here parses HTML (the lint forbids `innerHTML` and friends in this package).
 */

/** A child of {@link h}: a node, text (numbers too), nothing, or a list of those. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attributes of {@link h}: strings (set with `setAttribute`), flags, and `on…` listeners. */
export type Attrs = Record<
  string,
  string | number | boolean | null | undefined | ((ev: Event) => void)
>;

/** Appends children (text as text nodes) to a node. */
export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, ...(c as Child[]));
    else if (typeof c === 'string' || typeof c === 'number')
      parent.appendChild(document.createTextNode(String(c)));
    else parent.appendChild(c as Node);
  }
}

/**
 * Builds an element. `attrs` keys starting with `on` take functions only (an event listener);
 * `true` sets a flag attribute, `false`/`null`/`undefined` leave it out; `value` and `checked` set
 * the property of form controls.
 *
 * @example
 * ```ts
 * h('a', { href: '#/invocations', class: 'nav' }, 'Invocations');
 * ```
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (name.startsWith('on')) {
      if (typeof v !== 'function') throw new TypeError(`${name} must be a function`);
      el.addEventListener(name.slice(2), v);
    } else if (typeof v === 'function') {
      throw new TypeError(`${name} must not be a function`);
    } else if (name === 'value' && 'value' in el) {
      (el as HTMLInputElement).value = String(v);
    } else if (name === 'checked' && el instanceof HTMLInputElement) {
      el.checked = v === true;
    } else {
      el.setAttribute(name, v === true ? '' : String(v));
    }
  }
  append(el, ...children);
  return el;
}

/** Replaces every child of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** A link inside the UI (a hash route), built from path segments that are each encoded. */
export function link(segments: readonly string[], text: Child, attrs: Attrs = {}): HTMLElement {
  return h('a', { ...attrs, href: routeHref(segments) }, text);
}

/** The hash of a route: each segment percent-encoded, so no value can leave its segment. */
export function routeHref(segments: readonly string[], query?: URLSearchParams): string {
  const q = query && [...query.keys()].length > 0 ? `?${query.toString()}` : '';
  return `#/${segments.map(encodeURIComponent).join('/')}${q}`;
}

/** A `<dl>` of label/value rows; rows whose value is undefined are left out. */
export function facts(rows: ReadonlyArray<readonly [string, Child]>): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    rows
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
}

/** A table with a header row; `rows` are the `<tr>` elements. */
export function table(headers: readonly string[], rows: readonly Node[], empty = 'Nothing here.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    null,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        headers.map((t) => h('th', null, t)),
      ),
    ),
    h('tbody', null, rows),
  );
}
