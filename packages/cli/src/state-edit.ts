/**
 * `latchkey state edit`: the state as pretty JSON in a temporary file, the user's editor on it, and
 * the patch that turns what was read into what was saved (changed names set, removed names
 * deleted). The patch computation is pure; running the editor is the one side effect.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, ExitCode } from './exit.js';

/** Whether two JSON values are equal (objects compared by their members, in any order). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const ob = b as Record<string, unknown>;
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(ob, k) && jsonEqual((a as Record<string, unknown>)[k], ob[k]))
  );
}

/**
 * The admin API's patch from `before` to `after`: every name whose value changed or is new, with
 * its value; every name that is gone, with null (which deletes it). Empty when nothing changed.
 */
export function statePatch(
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, name) || !jsonEqual(before[name], value)) patch[name] = value;
  }
  for (const name of Object.keys(before)) {
    if (!Object.hasOwn(after, name)) patch[name] = null;
  }
  return patch;
}

/** The edited file's text as a state object; exit 1 with a message when it is not one. */
export function parseEditedState(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CliError(
      ExitCode.FAILURE,
      `the edited state is not valid JSON (${(e as Error).message}); nothing was changed`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(
      ExitCode.FAILURE,
      'the edited state must be a JSON object of names and values; nothing was changed',
    );
  }
  return value as Record<string, unknown>;
}

/** The editor command: `LATCHKEY_EDITOR`, else `EDITOR`, else `VISUAL`, else `vi`. */
export function editorCommand(env: Readonly<Record<string, string | undefined>>): string {
  return env['LATCHKEY_EDITOR'] || env['EDITOR'] || env['VISUAL'] || 'vi';
}

/**
 * Writes `text` to a fresh temporary file, runs the editor on it (through `sh`, so the command may
 * carry arguments, `code --wait`), and returns what the file holds afterwards. Exit 1 when the
 * editor fails. The file is removed in every case.
 */
export function editText(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  fileName = 'state.json',
): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-edit-'));
  const file = join(dir, fileName);
  try {
    writeFileSync(file, text, { mode: 0o600 });
    const editor = editorCommand(env);
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'latchkey-editor', file], {
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    if (r.error || r.status !== 0) {
      const why = r.error ? r.error.message : `exit code ${r.status ?? r.signal}`;
      throw new CliError(
        ExitCode.FAILURE,
        `the editor (${editor}) failed: ${why}; nothing was changed`,
      );
    }
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
