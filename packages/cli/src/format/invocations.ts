/**
 * Invocations in a terminal: the rows of `inv ls`, and `inv describe` (a header with target,
 * status, attempts and times, the last failure with its step and stack, the journal as a timeline
 * table, the children and the outcome). Pure: every function takes the time it calls now.
 */
import { clip, fields, table, PLAIN, type Style } from '../output.js';
import type {
  ApiErrorInfo,
  BulkResult,
  InvocationCounts,
  InvocationDetail,
  InvocationList,
  Preview,
  TargetInfo,
  TimelineItem,
} from '../types.js';
import { INVOCATION_STATUSES } from '@latchkey/core';
import { clockTime, duration, relative, timeWithRelative } from './time.js';

/** Widest value preview in a timeline row (characters). */
export const VALUE_COLUMN = 60;

/** `service/key/handler`, or `service/handler` for a service (Restate's way of writing a target). */
export function targetText(t: TargetInfo): string {
  return t.key === undefined ? `${t.service}/${t.handler}` : `${t.service}/${t.key}/${t.handler}`;
}

/** A status, coloured by what it asks of an operator. */
export function statusText(status: string, style: Style = PLAIN): string {
  switch (status) {
    case 'completed':
      return style.green(status);
    case 'backing-off':
      return style.red(status);
    case 'paused':
      return style.yellow(status);
    case 'running':
      return style.cyan(status);
    default:
      return status;
  }
}

/** `Name: message`, or the message alone for a plain `Error`. */
export function errorText(e: ApiErrorInfo | undefined): string {
  if (!e) return '';
  const message = e.message ?? '';
  return e.name && e.name !== 'Error' ? `${e.name}: ${message}` : message;
}

/** A preview's JSON, cut to `max` characters; a truncated one says its full size. */
export function previewText(p: Preview | string | undefined, max: number): string {
  if (p === undefined) return '';
  if (typeof p === 'string') return clip(p, max);
  const size = p.truncated && p.bytes !== undefined ? ` (${p.bytes} bytes)` : '';
  const cut = p.truncated ? `${p.json}…` : p.json;
  return clip(cut, Math.max(8, max - size.length)) + size;
}

/** `inv ls`: one row per invocation, and the cursor of the next page when there is one. */
export function formatInvocationList(list: InvocationList, style: Style, now: number): string {
  if (list.invocations.length === 0) return 'no invocations match\n';
  const rows = list.invocations.map((inv) => [
    inv.id,
    targetText(inv.target),
    statusText(inv.status, style),
    inv.attempts === undefined ? '' : String(inv.attempts),
    inv.createdAt === undefined ? '' : relative(inv.createdAt, now),
    inv.nextRetryAt === undefined ? '' : relative(inv.nextRetryAt, now),
    clip(errorText(inv.lastFailure), 60),
  ]);
  const out = table(
    ['ID', 'TARGET', 'STATUS', 'ATTEMPTS', 'CREATED', 'NEXT RETRY', 'LAST FAILURE'],
    rows,
    style,
  );
  return list.nextCursor === undefined
    ? out
    : `${out}${style.dim(`more: --cursor ${list.nextCursor}`)}\n`;
}

/** The invocation's timeline: the server's, or one built from an older server's raw journal. */
export function timelineOf(d: InvocationDetail): TimelineItem[] {
  if (d.timeline) return d.timeline;
  return (d.journal ?? []).map((e, index) => {
    const v = e['v'];
    const failure = e['e'] as ApiErrorInfo | undefined;
    return {
      index,
      kind: String(e['k']),
      ...(typeof e['n'] === 'string' ? { name: e['n'] } : {}),
      ...(v !== undefined ? { value: { json: JSON.stringify(v) } } : {}),
      ...(failure ? { failure } : {}),
      ...(typeof e['id'] === 'string' && (e['k'] === 'call' || e['k'] === 'send')
        ? { childId: e['id'] }
        : {}),
      ...(typeof e['due'] === 'number' ? { due: e['due'] } : {}),
    };
  });
}

function timelineRows(items: readonly TimelineItem[], style: Style): string[][] {
  return items.map((t) => {
    let value = previewText(t.value, VALUE_COLUMN);
    if (t.failure) value = style.red(clip(`✗ ${errorText(t.failure)}`, VALUE_COLUMN));
    else if (t.childId) value = `→ ${t.childId}${value ? ` ${value}` : ''}`;
    else if (t.due !== undefined && !value) value = `until ${clockTime(t.due)}`;
    return [
      String(t.index),
      t.kind,
      t.name ?? '',
      clockTime(t.recordedAt),
      t.durationMs === undefined ? '' : duration(t.durationMs),
      value,
    ];
  });
}

function header(d: InvocationDetail, style: Style, now: number): string {
  const pairs: Array<[string, string | undefined]> = [
    ['target', `${targetText(d.target)}${d.mode ? style.dim(` (${d.mode})`) : ''}`],
    ['status', statusText(d.status, style)],
    ['attempts', d.attempts === undefined ? undefined : String(d.attempts)],
    ['created', timeWithRelative(d.createdAt, now)],
    ['first started', timeWithRelative(d.firstStartedAt, now)],
    ['last started', timeWithRelative(d.lastStartedAt, now)],
    ['modified', timeWithRelative(d.modifiedAt, now)],
    ['next retry', timeWithRelative(d.nextRetryAt ?? d.failure?.nextRetryAt, now)],
    ['completed', timeWithRelative(d.completedAt, now)],
    ['idempotency key', d.idempotencyKey],
    ['workflow key', d.workflowKey],
    ['trace', d.traceId],
    [
      'invoked by',
      d.invokedBy
        ? `${d.invokedBy.id}${d.invokedBy.index !== undefined ? ` (entry ${d.invokedBy.index})` : ''}`
        : undefined,
    ],
    ['input', d.input ? previewText(d.input, 100) : undefined],
  ];
  return `${style.bold(`Invocation ${d.id}`)}\n${fields(pairs, style)}`;
}

function failureSection(d: InvocationDetail, style: Style, now: number): string {
  const f = d.failure;
  if (!f && !d.lastFailure) return '';
  if (!f) return `\n${style.bold('Last failure')}\n  ${style.red(errorText(d.lastFailure))}\n`;
  const step = f.step
    ? `entry ${f.step.index}${f.step.kind ? ` ${f.step.kind}` : ''}${f.step.name ? ` '${f.step.name}'` : ''}`
    : 'outside a step';
  const title = `Last failure${f.attempt !== undefined ? ` (attempt ${f.attempt})` : ''}`;
  let out = `\n${style.bold(title)}\n`;
  out += fields(
    [
      ['at', timeWithRelative(f.at, now)],
      ['step', step],
      ['error', style.red(errorText(f.error))],
      ['code', f.error?.code === undefined ? undefined : String(f.error.code)],
      ['next retry', timeWithRelative(f.nextRetryAt, now)],
    ],
    style,
  );
  const stack = f.error?.stack;
  if (stack) out += `  ${style.dim('stack')}\n${stack.replace(/^/gm, '    ')}\n`;
  return out;
}

/** `inv describe`: everything an operator wants to see of one invocation, for a terminal. */
export function formatInvocation(d: InvocationDetail, style: Style, now: number): string {
  let out = header(d, style, now) + failureSection(d, style, now);
  const items = timelineOf(d);
  out += `\n${style.bold(`Journal (${items.length} ${items.length === 1 ? 'entry' : 'entries'})`)}\n`;
  out +=
    items.length === 0
      ? '  (empty)\n'
      : table(
          ['#', 'KIND', 'NAME', 'RECORDED', 'DURATION', 'VALUE'],
          timelineRows(items, style),
          style,
        )
          .replace(/^/gm, '  ')
          .replace(/ +$/gm, '');
  if (d.children && d.children.length > 0) {
    out += `\n${style.bold('Children')}\n`;
    const rows = d.children.map((c) => [
      c.index === undefined ? '' : String(c.index),
      c.kind ?? '',
      c.id,
      c.target ? targetText(c.target) : '',
    ]);
    out += table(['#', 'KIND', 'ID', 'TARGET'], rows, style).replace(/^/gm, '  ');
  }
  if (d.outcome) {
    out += `\n${style.bold('Outcome')}\n`;
    out += d.outcome.ok
      ? `  ${style.green('ok')} ${previewText(d.outcome.value, 200)}\n`
      : `  ${style.red('failed')} ${errorText(d.outcome.error)}\n`;
  }
  return out;
}

/** `inv counts`: the total, then a row per status (in lifecycle order) and per service. */
export function formatCounts(c: InvocationCounts, style: Style): string {
  const order: readonly string[] = INVOCATION_STATUSES;
  const statuses = Object.keys(c.byStatus).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  let out = `${style.bold('total')} ${c.total}\n\n`;
  out += table(
    ['STATUS', 'COUNT'],
    statuses.map((s) => [statusText(s, style), String(c.byStatus[s])]),
    style,
  );
  const services = Object.keys(c.byService ?? {}).sort();
  if (services.length > 0) {
    out +=
      '\n' +
      table(
        ['SERVICE', 'COUNT'],
        services.map((s) => [s, String(c.byService![s])]),
        style,
      );
  }
  return out;
}

/** The answer to a bulk action: what was matched, applied and refused. */
export function formatBulk(op: string, r: BulkResult, style: Style): string {
  const verb = r.dryRun ? `would ${op}` : `${op}:`;
  let out = `${r.matched} matched; ${verb} ${r.applied.length}`;
  out += r.failed.length > 0 ? `; ${style.red(`${r.failed.length} failed`)}\n` : '\n';
  if (r.dryRun && r.applied.length > 0) out += r.applied.map((id) => `  ${id}\n`).join('');
  if (r.failed.length > 0) {
    out += table(
      ['ID', 'CODE', 'REASON'],
      r.failed.map((f) => [f.id, f.code ?? '', f.message ?? '']),
      style,
    );
  }
  return out;
}
