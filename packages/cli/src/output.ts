/**
 * What the CLI writes and how: the process's streams (injectable), colour when it is wanted, and
 * plain-text tables. Data goes to stdout, messages and errors to stderr.
 */

/** A stream the CLI writes to. */
export interface OutStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
}

/** The process the CLI runs in: streams and environment (tests pass their own). */
export interface Io {
  stdout: OutStream;
  stderr: OutStream;
  stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean | undefined };
  env: Readonly<Record<string, string | undefined>>;
}

/** The real process. */
export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/**
 * Whether to colour what goes to a stream: never with `NO_COLOR` set (any non-empty value) or
 * `TERM=dumb`; always with `CLICOLOR_FORCE` or `FORCE_COLOR` set (other than `0`); else only on a
 * terminal.
 */
export function colorEnabled(
  env: Readonly<Record<string, string | undefined>>,
  isTTY: boolean | undefined,
): boolean {
  if (env['NO_COLOR']) return false;
  if (env['TERM'] === 'dumb') return false;
  const force = env['CLICOLOR_FORCE'] ?? env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0') return true;
  return isTTY === true;
}

/** Styles text with ANSI colours, or leaves it as it is. */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

const sgr =
  (open: number, close: number) =>
  (s: string): string =>
    `\u001b[${open}m${s}\u001b[${close}m`;

/** ANSI colours. */
export const COLOR: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

const same = (s: string): string => s;
/** No colours. */
export const PLAIN: Style = {
  bold: same,
  dim: same,
  red: same,
  green: same,
  yellow: same,
  cyan: same,
};

/** The style for stdout in this process. */
export function styleFor(io: Io): Style {
  return colorEnabled(io.env, io.stdout.isTTY) ? COLOR : PLAIN;
}

// eslint-disable-next-line no-control-regex -- ANSI escape sequences are what it removes
const ANSI = /\u001b\[[0-9;]*m/g;

/** The width of a cell as a terminal shows it (without colour codes). */
export function visibleWidth(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

/** Cuts text to `max` characters, ending with `…` when cut; one line only. */
export function clip(s: string, max: number): string {
  const line = s.replace(/\s*\n\s*/g, ' ');
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/**
 * A plain-text table: a header row, then one line per row, columns padded to their widest cell and
 * separated by two spaces (the last column is not padded). Cells may carry colour codes.
 */
export function table(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  style: Style = PLAIN,
): string {
  const widths = headers.map((h, i) =>
    Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ''))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleWidth(c))))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => style.bold(h))), ...rows.map(line)].join('\n') + '\n';
}

/** Key/value lines (`label  value`), labels padded to the widest. */
export function fields(
  pairs: ReadonlyArray<readonly [string, string | undefined]>,
  style: Style = PLAIN,
  indent = '  ',
): string {
  const shown = pairs.filter((p): p is readonly [string, string] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${indent}${style.dim(k.padEnd(width))}  ${v}\n`).join('');
}

/** JSON as the CLI prints it with `-o json`: the API's answer, indented, one document. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
