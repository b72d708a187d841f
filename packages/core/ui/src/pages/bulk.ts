/**
 * Actions on every invocation the list's filters match (`POST /invocations/bulk/{op}`): a dry run
 * first, which says how many would be touched, then the action itself once the operator confirms.
 */
import { api } from '../api.js';
import { h, link, replace } from '../dom.js';
import { failureBox } from '../page.js';

const OPS = ['cancel', 'kill', 'pause', 'resume', 'purge', 'restart-as-new'] as const;

/** The answer of a bulk action. */
interface BulkAnswer {
  dryRun?: boolean;
  matched?: number;
  applied?: string[];
  failed?: Array<{ id: string; code?: string; message?: string }>;
}

/** At most this many ids of a result are listed. */
const SHOWN = 20;

function ids(list: readonly string[]): HTMLElement {
  return h(
    'p',
    { class: 'note' },
    list.slice(0, SHOWN).map((id) => [link(['invocations', id], id, { class: 'id' }), ' ']),
    list.length > SHOWN ? `… and ${list.length - SHOWN} more` : '',
  );
}

/** The bulk bar for the list's filters (none: a hint, since the API wants at least one). */
export function bulkBar(filter: Record<string, string | undefined>): HTMLElement {
  const query = Object.fromEntries(Object.entries(filter).filter(([, v]) => v));
  if (Object.keys(query).length === 0)
    return h('p', { class: 'note' }, 'Set a filter to act on every invocation it matches.');
  const op = h(
    'select',
    { id: 'bulk-op' },
    OPS.map((o) => h('option', { value: o }, o)),
  );
  const out = h('div', { id: 'bulk-result' });
  const run = (dryRun: boolean): Promise<BulkAnswer> =>
    api<BulkAnswer>(['invocations', 'bulk', op.value], {
      method: 'POST',
      query,
      body: { dryRun },
    });
  const preview = (): void => {
    replace(out, h('p', { class: 'busy' }, 'Checking…'));
    run(true).then(
      (r) => {
        const touched = r.applied ?? [];
        replace(
          out,
          h(
            'p',
            null,
            `${op.value}: ${r.matched ?? touched.length} match, ${touched.length} would be touched. `,
            touched.length > 0
              ? h(
                  'button',
                  { type: 'button', class: 'danger', id: 'bulk-apply', onclick: apply },
                  `${op.value} ${touched.length}`,
                )
              : null,
          ),
          ids(touched),
        );
      },
      (e: unknown) => replace(out, failureBox(e, 'Dry run')),
    );
  };
  const apply = (): void => {
    replace(out, h('p', { class: 'busy' }, `${op.value}…`));
    run(false).then(
      (r) => {
        const failed = r.failed ?? [];
        replace(
          out,
          h('p', { class: 'ok', role: 'status' }, `${op.value}: ${(r.applied ?? []).length} done`),
          ids(r.applied ?? []),
          failed.length > 0
            ? h(
                'ul',
                { class: 'issues' },
                failed
                  .slice(0, SHOWN)
                  .map((f) => h('li', null, `${f.id}: ${f.code ?? ''} ${f.message ?? ''}`)),
              )
            : null,
        );
      },
      (e: unknown) => replace(out, failureBox(e, op.value)),
    );
  };
  return h(
    'div',
    { class: 'bulk', id: 'bulk' },
    h(
      'p',
      { class: 'filters' },
      h('label', null, 'On every match', op),
      h(
        'button',
        { type: 'button', class: 'quiet', id: 'bulk-preview', onclick: preview },
        'Dry run',
      ),
    ),
    out,
  );
}
