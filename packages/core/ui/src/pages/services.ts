/**
 * Services: every service, object and workflow served here, and one of them with its handlers
 * (kind, options, JSON Schemas of input and output) and a form to invoke a handler, its JSON input
 * checked against the handler's schema before it is sent
 * (`POST /services/{service}/handlers/{handler}/invoke`).
 */
import { api } from '../api.js';
import { facts, h, link, replace, table } from '../dom.js';
import { failureBox, failureText, section, type Page } from '../page.js';
import { validate } from '../schema.js';
import type { HandlerInfo, ServiceInfo } from '../types.js';

/** The services page. */
export function servicesPage(): Page {
  const list = h('div', { id: 'services' }, h('p', { class: 'empty' }, 'Loading…'));
  api<{ services?: ServiceInfo[] }>(['services']).then(
    (r) =>
      replace(
        list,
        table(
          ['Name', 'Kind', 'Handlers', 'Description'],
          (r.services ?? []).map((s) =>
            h(
              'tr',
              { 'data-service': s.name },
              h('td', null, link(['services', s.name], s.name)),
              h('td', null, s.kind),
              h('td', null, s.handlers.map((x) => x.name).join(', ')),
              h('td', null, s.description ?? ''),
            ),
          ),
          'No services.',
        ),
      ),
    (e: unknown) => replace(list, failureBox(e, 'Listing services')),
  );
  return { el: h('div', null, h('h1', null, 'Services'), list) };
}

/** A value that fits a schema, roughly: a starting point for the input editor. */
export function sample(schema: unknown, depth = 0): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 8) return null;
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum'])) return s['enum'][0];
  if (s['default'] !== undefined) return s['default'];
  const options = (s['anyOf'] ?? s['oneOf']) as unknown[] | undefined;
  if (Array.isArray(options) && options.length > 0) return sample(options[0], depth + 1);
  const type = Array.isArray(s['type']) ? (s['type'] as unknown[])[0] : s['type'];
  switch (type) {
    case 'object': {
      const props = (s['properties'] ?? {}) as Record<string, unknown>;
      const required = new Set((s['required'] as string[] | undefined) ?? Object.keys(props));
      return Object.fromEntries(
        Object.entries(props)
          .filter(([k]) => required.has(k))
          .map(([k, v]) => [k, sample(v, depth + 1)]),
      );
    }
    case 'array':
      return [];
    case 'string':
      return '';
    case 'number':
    case 'integer':
      return typeof s['minimum'] === 'number' ? s['minimum'] : 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}

function schemaBlock(title: string, schema: unknown, open = false): HTMLElement {
  return h(
    'details',
    { open },
    h('summary', null, title),
    h('pre', { class: 'schema' }, JSON.stringify(schema ?? {}, null, 2)),
  );
}

/** The form that invokes `handler` of `svc`. */
function invokeForm(svc: ServiceInfo, handler: HandlerInfo): HTMLElement {
  const keyed = svc.kind !== 'service';
  const key = h('input', { name: 'key', placeholder: 'key', required: keyed });
  const idem = h('input', { name: 'idempotencyKey', placeholder: 'optional' });
  const start = sample(handler.input);
  const input = h('textarea', {
    name: 'input',
    rows: 6,
    spellcheck: 'false',
    'aria-label': `Input of ${handler.name}`,
    value: start === null && !handler.input ? '' : JSON.stringify(start, null, 2),
  });
  const out = h('div', { class: 'invoke-result' });
  const form = h(
    'form',
    {
      class: 'invoke',
      'data-handler': handler.name,
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        let value: unknown;
        const text = input.value.trim();
        if (text !== '') {
          try {
            value = JSON.parse(text);
          } catch (e) {
            replace(
              out,
              h('p', { class: 'error', role: 'alert' }, `Not JSON: ${(e as Error).message}`),
            );
            return;
          }
        }
        const issues = value === undefined ? [] : validate(handler.input, value);
        if (issues.length > 0) {
          replace(
            out,
            h(
              'p',
              { class: 'error', role: 'alert' },
              'The input does not fit the schema (not sent):',
            ),
            h(
              'ul',
              { class: 'issues' },
              issues.map((i) => h('li', null, `${i.path}: ${i.message}`)),
            ),
          );
          return;
        }
        replace(out, h('p', { class: 'busy' }, 'Sending…'));
        const body: Record<string, unknown> = { input: value };
        if (keyed) body['key'] = key.value;
        if (idem.value !== '') body['idempotencyKey'] = idem.value;
        api<{ invocationId: string; status?: string }>(
          ['services', svc.name, 'handlers', handler.name, 'invoke'],
          { method: 'POST', body },
        ).then(
          (r) =>
            replace(
              out,
              h(
                'p',
                { class: 'ok', role: 'status' },
                `${r.status ?? 'Accepted'}: `,
                link(['invocations', r.invocationId], r.invocationId, { class: 'id' }),
              ),
            ),
          (e: unknown) =>
            replace(out, h('p', { class: 'error', role: 'alert' }, `Refused: ${failureText(e)}`)),
        );
      },
    },
    keyed ? h('label', null, 'Key ', key) : null,
    h('label', null, 'Idempotency key ', idem),
    h('label', { class: 'wide' }, 'Input (JSON)', input),
    h('button', { type: 'submit' }, 'Check and send'),
    out,
  );
  return form;
}

function handlerCard(svc: ServiceInfo, handler: HandlerInfo): HTMLElement {
  return h(
    'article',
    { class: 'card', 'data-handler': handler.name },
    h('h3', null, h('code', null, handler.name), ' ', h('small', null, handler.kind ?? '')),
    handler.description ? h('p', null, handler.description) : null,
    facts([
      ['Private', handler.private ? 'yes (handlers only; not invocable from here)' : undefined],
      [
        'Options',
        handler.options && Object.keys(handler.options).length > 0
          ? h('code', null, JSON.stringify(handler.options))
          : undefined,
      ],
    ]),
    schemaBlock('Input schema', handler.input, true),
    schemaBlock('Output schema', handler.output),
    handler.private ? null : invokeForm(svc, handler),
  );
}

/** The page of service `name`. */
export function servicePage(name: string): Page {
  const body = h('div', { id: 'service' }, h('p', { class: 'empty' }, 'Loading…'));
  api<ServiceInfo>(['services', name]).then(
    (svc) =>
      replace(
        body,
        facts([
          ['Kind', svc.kind],
          ['Description', svc.description],
          [
            'Metadata',
            svc.metadata && Object.keys(svc.metadata).length > 0
              ? h('code', null, JSON.stringify(svc.metadata))
              : undefined,
          ],
        ]),
        section(
          'Handlers',
          svc.handlers.map((x) => handlerCard(svc, x)),
        ),
      ),
    (e: unknown) => replace(body, failureBox(e, 'Reading the service')),
  );
  return { el: h('div', null, h('h1', null, 'Service ', h('code', null, name)), body) };
}
