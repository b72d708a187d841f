/**
 * `latchkey inv …`: list, describe and steer invocations, one by id or many by filter
 * (`POST /invocations/bulk/{op}`, confirmed first unless `--yes`).
 */
import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { addFilters, filterQuery, type FilterOptions } from '../filters.js';
import { seg } from '../api.js';
import { CliError, ExitCode, usage } from '../exit.js';
import {
  formatBulk,
  formatCounts,
  formatInvocation,
  formatInvocationList,
} from '../format/invocations.js';
import { outputOption, wholeNumber, type CommandContext, type Program } from '../program.js';
import type { BulkResult, InvocationCounts, InvocationDetail, InvocationList } from '../types.js';

/** The actions on invocations: the command's name, the API's operation, the past tense. */
const ACTIONS = [
  {
    name: 'cancel',
    op: 'cancel',
    done: 'cancelled',
    what: 'cancel (CancelledError at its next await; compensations run)',
  },
  {
    name: 'kill',
    op: 'kill',
    done: 'killed',
    what: 'kill (stop at once, no compensation; frees the key)',
  },
  { name: 'pause', op: 'pause', done: 'paused', what: 'pause (no further attempts until resumed)' },
  {
    name: 'resume',
    op: 'resume',
    done: 'resumed',
    what: 'resume a paused invocation (a fresh set of attempts)',
  },
  {
    name: 'purge',
    op: 'purge',
    done: 'purged',
    what: 'purge a completed invocation (its record and journal)',
  },
  {
    name: 'restart',
    op: 'restart-as-new',
    done: 'restarted',
    what: 'restart a completed invocation as a new one, same input',
  },
] as const;

/** Asks a yes/no question on the terminal; true for `y` or `yes`. */
export function confirm(c: CommandContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: c.io.stdin, output: c.io.stderr as NodeJS.WritableStream });
  return new Promise((resolve) => {
    rl.question(`${question} [y/N] `, (answer) => {
      rl.close();
      resolve(/^(y|yes)$/i.test(answer.trim()));
    });
    rl.once('close', () => resolve(false));
  });
}

interface ActionOptions extends FilterOptions {
  dryRun?: boolean;
  yes?: boolean;
  limit?: number;
  keepPrefix?: number;
}

async function bulk(
  c: CommandContext,
  action: (typeof ACTIONS)[number],
  o: ActionOptions,
): Promise<void> {
  const query = filterQuery(o);
  if (Object.keys(query).length === 0) {
    throw usage(
      `give an invocation id, or a filter (--status, --service, …) to ${action.name} many`,
    );
  }
  if (o.keepPrefix !== undefined)
    throw usage('--keep-prefix applies to one invocation (give its id)');
  const path = `/invocations/bulk/${action.op}`;
  const limit = o.limit !== undefined ? { limit: o.limit } : {};
  if (o.dryRun) {
    const r = await c.api.request<BulkResult>('POST', path, query, { dryRun: true, ...limit });
    c.show(r, (v) => formatBulk(action.name, v, c.style));
    return;
  }
  if (!o.yes) {
    if (!c.io.stdin.isTTY) {
      throw usage(
        `refusing to ${action.name} invocations by filter without --yes (no terminal to confirm on); try --dry-run first`,
      );
    }
    const preview = await c.api.request<BulkResult>('POST', path, query, {
      dryRun: true,
      ...limit,
    });
    c.io.stderr.write(formatBulk(action.name, preview, c.style));
    if (preview.matched === 0) return;
    const n = preview.applied.length;
    if (!(await confirm(c, `${action.name} ${n} invocation${n === 1 ? '' : 's'}?`))) {
      throw usage('not confirmed; nothing was changed');
    }
  }
  const r = await c.api.request<BulkResult>('POST', path, query, { dryRun: false, ...limit });
  c.show(r, (v) => formatBulk(action.done, v, c.style));
  if (r.failed.length > 0) {
    throw new CliError(
      ExitCode.FAILURE,
      `${r.failed.length} of ${r.matched} could not be ${action.done}`,
    );
  }
}

async function single(
  c: CommandContext,
  action: (typeof ACTIONS)[number],
  id: string,
  o: ActionOptions,
): Promise<void> {
  if (Object.keys(filterQuery(o)).length > 0)
    throw usage('give an invocation id or filters, not both');
  if (o.dryRun) throw usage('--dry-run applies to actions by filter');
  if (action.op === 'restart-as-new') {
    const body = o.keepPrefix !== undefined ? { keepPrefix: o.keepPrefix } : {};
    const r = await c.api.request<{ invocationId: string; restartedFrom: string }>(
      'POST',
      `/invocations/${seg(id)}/restart-as-new`,
      undefined,
      body,
    );
    c.show(r, (v) => `restarted ${v.restartedFrom} as ${v.invocationId}\n`);
    return;
  }
  if (o.keepPrefix !== undefined) throw usage('--keep-prefix applies to restart only');
  const r = await c.api.request<Record<string, unknown>>(
    'PATCH',
    `/invocations/${seg(id)}/${action.op}`,
  );
  c.show(r, () => `${action.done} ${id}\n`);
}

/** Adds `inv` and its commands. */
export function registerInv(program: Command, p: Program): void {
  const inv = program
    .command('inv')
    .alias('invocations')
    .description('list, describe and steer invocations');

  addFilters(inv.command('ls').alias('list').description('list invocations (newest first)'))
    .option('--limit <n>', 'at most this many (server default 100, at most 1,000)', wholeNumber(1))
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .addOption(new Option('--order <order>', 'newest or oldest first').choices(['desc', 'asc']))
    .addOption(outputOption())
    .action(
      async (
        o: FilterOptions & { limit?: number; cursor?: string; order?: string },
        cmd: Command,
      ) => {
        const c = p.context(cmd);
        const list = await c.api.get<InvocationList>('/invocations', {
          ...filterQuery(o),
          limit: o.limit,
          cursor: o.cursor,
          order: o.order,
        });
        c.show(list, (v) => formatInvocationList(v, c.style, Date.now()));
      },
    );

  inv
    .command('counts')
    .description('how many invocations there are, per status and per service')
    .option('--service <name>', 'per status of this service only')
    .addOption(outputOption())
    .action(async (o: { service?: string }, cmd: Command) => {
      const c = p.context(cmd);
      const counts = await c.api.get<InvocationCounts>('/invocations/counts', {
        service: o.service,
      });
      c.show(counts, (v) => formatCounts(v, c.style));
    });

  inv
    .command('describe <id>')
    .alias('get')
    .description('an invocation: target, status, attempts, times, last failure, journal timeline')
    .option('--full', 'values whole, not cut to previews')
    .addOption(outputOption())
    .action(async (id: string, o: { full?: boolean }, cmd: Command) => {
      const c = p.context(cmd);
      const d = await c.api.get<InvocationDetail>(
        `/invocations/${seg(id)}`,
        o.full ? { full: 1 } : {},
      );
      c.show(d, (v) => formatInvocation(v, c.style, Date.now()));
    });

  for (const action of ACTIONS) {
    const cmd = addFilters(
      inv
        .command(`${action.name} [id]`)
        .description(`${action.what}; by id, or every invocation matching the filters`),
    )
      .option('--dry-run', 'with filters: list what would be touched, change nothing')
      .option('-y, --yes', 'with filters: do not ask for confirmation')
      .option('--limit <n>', 'with filters: at most this many (default 1,000)', wholeNumber(1));
    if (action.name === 'restart') {
      cmd.option(
        '--keep-prefix <n>',
        'keep the first n journal entries of the old run',
        wholeNumber(0),
      );
    }
    cmd
      .addOption(outputOption())
      .action(async (id: string | undefined, o: ActionOptions, sub: Command) => {
        const c = p.context(sub);
        if (id === undefined) await bulk(c, action, o);
        else await single(c, action, id, o);
      });
  }
}
