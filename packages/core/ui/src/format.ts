/**
 * How values read: times, durations, statuses and the API's value previews. Pure functions of
 * their input (and `now`), returning text or text-only nodes.
 */
import { h, type Child } from './dom.js';

/** A time (ms since the epoch) as `2026-12-04 08:31:23.123` in the browser's time zone. */
export function fmtTime(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

/** A duration in ms as `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`. */
export function fmtDuration(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(a)} ms`;
  if (a < 60_000) return `${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A time relative to now: `5 s ago`, `in 2 min 3 s`. */
export function fmtAgo(ms: number | undefined, now = Date.now()): string | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  const d = fmtDuration(now - ms)!;
  return ms <= now ? `${d} ago` : `in ${d}`;
}

/** A time with its relative form in a tooltip-free second line. */
export function when(ms: number | undefined): Child {
  const t = fmtTime(ms);
  if (t === undefined) return undefined;
  return h('span', { class: 'when' }, t, h('small', null, ` (${fmtAgo(ms)})`));
}

/** A status as a badge (`data-status` carries it for styles and tests). */
export function statusBadge(status: string | undefined): HTMLElement {
  const s = status ?? 'unknown';
  return h('span', { class: `status status-${s.replace(/[^a-z-]/g, '')}`, 'data-status': s }, s);
}

/** The API's value preview (docs/ADMIN-API.md): whole JSON text, or its first bytes. */
export interface Preview {
  json: string;
  truncated?: boolean;
  bytes?: number;
}

/** Reads a value as the API may give it: a {@link Preview}, or (older servers) JSON text. */
export function asPreview(v: unknown): Preview | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && typeof (v as Preview).json === 'string') return v as Preview;
  if (typeof v === 'string') return { json: v };
  return { json: JSON.stringify(v) };
}

/** Values longer than this are shown as they are, not re-indented (a huge value stays cheap). */
const PRETTY_LIMIT = 200_000;

/** JSON text indented for reading (as it is when not JSON, truncated, or large). */
export function prettyJson(text: string, truncated = false): string {
  if (truncated || text.length > PRETTY_LIMIT || text === '') return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The size of a text in UTF-8 bytes, for reading: `312 B`, `4.1 KiB`, `2.0 MiB`. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** UTF-8 length of a string. */
export function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** A preview as a `<pre>`, with a note when it is cut. */
export function previewBlock(p: Preview | undefined, attrs: Record<string, string> = {}): Child {
  if (!p) return h('p', { class: 'empty' }, 'none');
  return h(
    'div',
    { class: 'value' },
    h('pre', attrs, prettyJson(p.json, p.truncated === true)),
    p.truncated
      ? h(
          'p',
          { class: 'note' },
          `… cut: ${fmtBytes(p.bytes ?? p.json.length)} in all (open with "full values")`,
        )
      : null,
  );
}

/** A target as `service/key/handler` (no key for a service). */
export function fmtTarget(t: { service: string; handler: string; key?: string } | undefined) {
  if (!t) return '';
  return t.key !== undefined ? `${t.service}/${t.key}/${t.handler}` : `${t.service}/${t.handler}`;
}

/** An error as `Name: message` (code appended when present). */
export function fmtError(e: unknown): string {
  if (e === undefined || e === null) return '';
  if (typeof e !== 'object') return JSON.stringify(e) ?? '';
  const o = e as { name?: unknown; message?: unknown; code?: unknown };
  const name = typeof o.name === 'string' ? o.name : 'Error';
  const msg = typeof o.message === 'string' ? o.message : JSON.stringify(e);
  return `${name}: ${msg}`;
}
