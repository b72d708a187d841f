/**
 * The filters of `GET /invocations` and of bulk actions (docs/ADMIN-API.md) as the command line
 * spells them, and the query they become.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { INVOCATION_STATUSES } from '@latchkey/core';
import { usage } from './exit.js';

/** Statuses an invocation may have. */
export const STATUSES = INVOCATION_STATUSES;

/** The filters, as commander parses them. */
export interface FilterOptions {
  status?: string;
  service?: string;
  handler?: string;
  key?: string;
  idempotencyKey?: string;
  createdAfter?: number;
  createdBefore?: number;
  modifiedAfter?: number;
  modifiedBefore?: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time given on the command line, in ms since the epoch: epoch milliseconds (`1764800000000`),
 * an ISO 8601 time (`2026-12-04T08:30:00Z`), or a distance back from `now` (`90s`, `10m`, `2h`,
 * `1d`). Throws commander's `InvalidArgumentError` (a usage error) otherwise.
 */
export function parseTime(value: string, now: number): number {
  if (/^\d+$/.test(value)) return Number(value);
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value);
  if (rel) return Math.round(now - Number(rel[1]) * UNIT_MS[rel[2]!]!);
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw new InvalidArgumentError(
      'expected epoch ms, an ISO 8601 time or a distance back (10m, 2h, 1d)',
    );
  }
  return t;
}

const time = (value: string): number => parseTime(value, Date.now());

/** Adds the filter options to a command. */
export function addFilters(cmd: Command): Command {
  return cmd
    .addOption(new Option('--status <status>', 'only invocations in this status').choices(STATUSES))
    .option('--service <name>', 'only invocations of this service, object or workflow')
    .option('--handler <name>', 'only invocations of this handler (with --service)')
    .option('--key <key>', 'only invocations of this object or workflow key (with --service)')
    .option(
      '--idempotency-key <key>',
      'only the invocation with this idempotency key (with --service)',
    )
    .option('--created-after <time>', 'created after (epoch ms, ISO 8601, or 10m/2h/1d ago)', time)
    .option('--created-before <time>', 'created before (as --created-after)', time)
    .option('--modified-after <time>', 'last changed after (as --created-after)', time)
    .option('--modified-before <time>', 'last changed before (as --created-after)', time);
}

/** The filters as query parameters; a usage error for those that need `--service` without it. */
export function filterQuery(o: FilterOptions): Record<string, string> {
  for (const [flag, v] of [
    ['--handler', o.handler],
    ['--key', o.key],
    ['--idempotency-key', o.idempotencyKey],
  ] as const) {
    if (v !== undefined && o.service === undefined) throw usage(`${flag} needs --service`);
  }
  const q: Record<string, string> = {};
  const names = [
    'status',
    'service',
    'handler',
    'key',
    'idempotencyKey',
    'createdAfter',
    'createdBefore',
    'modifiedAfter',
    'modifiedBefore',
  ] as const;
  for (const name of names) {
    const v = o[name];
    if (v !== undefined) q[name] = String(v);
  }
  return q;
}
