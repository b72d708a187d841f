/**
 * `latchkey state …`: read, set, clear and edit the state of an object or workflow key, through
 * the admin API (which applies a change only while no exclusive handler holds the key).
 */
import type { Command } from 'commander';
import { seg } from '../api.js';
import { usage } from '../exit.js';
import { table, type Style } from '../output.js';
import { outputOption, type Program } from '../program.js';
import { editText, parseEditedState, statePatch } from '../state-edit.js';
import type { StateAnswer } from '../types.js';

function statePath(service: string, key: string): string {
  return `/services/${seg(service)}/state/${seg(key)}`;
}

/** `state get` for a terminal: one row per name, its value as JSON. */
export function formatState(s: StateAnswer, style: Style): string {
  const names = Object.keys(s.state).sort();
  if (names.length === 0) return `${s.service}/${s.key} has no state\n`;
  return table(
    ['NAME', 'VALUE'],
    names.map((n) => [n, JSON.stringify(s.state[n])]),
    style,
  );
}

/** Parses a value given on the command line as JSON; a usage error otherwise. */
export function jsonArgument(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw usage(`not JSON: ${text.slice(0, 100)} (quote strings: '"text"')`);
  }
}

/** Adds `state` and its commands. */
export function registerState(program: Command, p: Program): void {
  const state = program
    .command('state')
    .alias('kv')
    .description("read and edit an object's or workflow's state");

  state
    .command('get <service> <key>')
    .description('the state of a key')
    .addOption(outputOption())
    .action(async (service: string, key: string, _o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const s = await c.api.get<StateAnswer>(statePath(service, key));
      c.show(s, (v) => formatState(v, c.style));
    });

  state
    .command('set <service> <key> <name> <json>')
    .description('set one value (JSON: 42, \'"text"\', \'{"a":1}\')')
    .action(
      async (
        service: string,
        key: string,
        name: string,
        json: string,
        _o: unknown,
        cmd: Command,
      ) => {
        const c = p.context(cmd);
        const value = jsonArgument(json);
        if (value === null)
          throw usage('null deletes: use `latchkey state clear <service> <key> <name>`');
        await c.api.request('POST', statePath(service, key), undefined, { [name]: value });
        c.note(`set ${name} of ${service}/${key}`);
      },
    );

  state
    .command('clear <service> <key> [name]')
    .description('delete one value, or every value of the key')
    .action(
      async (service: string, key: string, name: string | undefined, _o: unknown, cmd: Command) => {
        const c = p.context(cmd);
        if (name !== undefined) {
          await c.api.request('POST', statePath(service, key), undefined, { [name]: null });
          c.note(`cleared ${name} of ${service}/${key}`);
        } else {
          await c.api.request('DELETE', statePath(service, key));
          c.note(`cleared the state of ${service}/${key}`);
        }
      },
    );

  state
    .command('edit <service> <key>')
    .description('edit the state as JSON in $EDITOR, then apply what changed')
    .action(async (service: string, key: string, _o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const before = (await c.api.get<StateAnswer>(statePath(service, key))).state;
      const text = editText(JSON.stringify(before, null, 2) + '\n', c.io.env);
      const patch = statePatch(before, parseEditedState(text));
      const names = Object.keys(patch);
      if (names.length === 0) {
        c.note('no changes');
        return;
      }
      await c.api.request('POST', statePath(service, key), undefined, patch);
      const set = names.filter((n) => patch[n] !== null);
      const cleared = names.filter((n) => patch[n] === null);
      c.note(
        [
          set.length ? `set ${set.join(', ')}` : '',
          cleared.length ? `cleared ${cleared.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('; ') + ` of ${service}/${key}`,
      );
    });
}
