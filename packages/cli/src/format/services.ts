/**
 * Services in a terminal: `services ls` (one row per service) and `services describe` (its
 * handlers, their kinds, options and a one-line summary of each JSON Schema). Pure.
 */
import type { HandlerInfo, ServiceInfo } from '@latchkey/core';
import { clip, fields, table, type Style } from '../output.js';

/** Widest schema summary in a row (characters). */
export const SCHEMA_COLUMN = 70;

type Schema = Record<string, unknown>;

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A JSON Schema written the way TypeScript writes a type, on one line: `{ email: string; plan?:
 * "free" | "pro" }`, `number[]`, `any` for `{}`. Nested deeper than `depth`, an object is `{…}`.
 */
export function schemaSummary(schema: unknown, depth = 3): string {
  if (
    schema === true ||
    (isSchema(schema) && Object.keys(schema).filter((k) => !k.startsWith('$')).length === 0)
  )
    return 'any';
  if (schema === false) return 'never';
  if (!isSchema(schema)) return 'any';
  if ('const' in schema) return JSON.stringify(schema['const']);
  if (Array.isArray(schema['enum']))
    return schema['enum'].map((v) => JSON.stringify(v)).join(' | ');
  const union = schema['anyOf'] ?? schema['oneOf'];
  if (Array.isArray(union)) return union.map((s) => schemaSummary(s, depth)).join(' | ');
  const type = schema['type'];
  if (Array.isArray(type))
    return (type as unknown[]).map((t) => schemaSummary({ ...schema, type: t }, depth)).join(' | ');
  switch (type) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'null':
      return type;
    case 'integer':
      return 'integer';
    case 'array': {
      const items = schemaSummary(schema['items'], depth);
      return items.includes(' ') ? `(${items})[]` : `${items}[]`;
    }
    case 'object': {
      if (depth <= 0) return '{…}';
      const props = isSchema(schema['properties']) ? schema['properties'] : {};
      const required = new Set(
        Array.isArray(schema['required']) ? (schema['required'] as string[]) : [],
      );
      const parts = Object.entries(props).map(
        ([k, v]) => `${k}${required.has(k) ? '' : '?'}: ${schemaSummary(v, depth - 1)}`,
      );
      const extra = schema['additionalProperties'];
      if (isSchema(extra) && Object.keys(extra).length > 0)
        parts.push(`[name: string]: ${schemaSummary(extra, depth - 1)}`);
      return parts.length === 0 ? '{}' : `{ ${parts.join('; ')} }`;
    }
    default:
      return 'any';
  }
}

/** `services ls`. */
export function formatServiceList(services: readonly ServiceInfo[], style: Style): string {
  if (services.length === 0) return 'no services\n';
  return table(
    ['NAME', 'KIND', 'HANDLERS'],
    services.map((s) => [s.name, s.kind, s.handlers.map((h) => h.name).join(', ')]),
    style,
  );
}

function optionsText(h: HandlerInfo): string {
  const o = h.options;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (k === 'retryPolicy' || k === 'ingressPrivate') continue;
    parts.push(`${k}=${String(v)}`);
  }
  if (o.retryPolicy) {
    const r = Object.entries(o.retryPolicy).map(([k, v]) => `${k}=${v === null ? '∞' : String(v)}`);
    parts.push(`retry(${r.join(', ')})`);
  }
  return parts.join(' ');
}

/** `services describe`: the service, then one block per handler. */
export function formatService(s: ServiceInfo, style: Style): string {
  let out = `${style.bold(`${s.kind} ${s.name}`)}\n`;
  out += fields(
    [
      ['description', s.description],
      [
        'metadata',
        s.metadata
          ? Object.entries(s.metadata)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')
          : undefined,
      ],
    ],
    style,
  );
  out += '\n';
  const rows = s.handlers.map((h) => [
    h.name,
    h.kind ?? '—',
    h.private ? 'private' : 'public',
    clip(schemaSummary(h.input), SCHEMA_COLUMN),
    clip(schemaSummary(h.output), SCHEMA_COLUMN),
  ]);
  out += table(['HANDLER', 'KIND', 'INGRESS', 'INPUT', 'OUTPUT'], rows, style);
  for (const h of s.handlers) {
    const opts = optionsText(h);
    const types = [h.inputContentType, h.outputContentType].some((t) => t !== 'application/json');
    if (!h.description && !opts && !types) continue;
    out += `\n${style.bold(h.name)}\n`;
    out += fields(
      [
        ['description', h.description],
        ['options', opts || undefined],
        ['input type', types ? (h.inputContentType ?? '(none)') : undefined],
        ['output type', types ? (h.outputContentType ?? '(none)') : undefined],
      ],
      style,
    );
  }
  return out;
}
