/**
 * The live events channel's messages, as the scripts write them (`emit_status`, `emit_journal` in
 * `lua/prelude.lua`), decoded in one place (`decodeEvent`): one row per message.
 */
import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../src/events.js';

const ID = 'inv_0aBcDeFgHiJkLmNoPq';

describe('decodeEvent', () => {
  const rows: [string, string, unknown][] = [
    [
      'a status change of an object invocation',
      `s\n${ID}\nrunning\n1764800000123\ncounter\nadd\nk1`,
      {
        type: 'status',
        id: ID,
        status: 'running',
        service: 'counter',
        handler: 'add',
        key: 'k1',
        at: 1764800000123,
      },
    ],
    [
      'a service has no key',
      `s\n${ID}\ncompleted\n5\ngreeter\ngreet\n`,
      { type: 'status', id: ID, status: 'completed', service: 'greeter', handler: 'greet', at: 5 },
    ],
    [
      'a key, last, keeps its newlines',
      `s\n${ID}\nqueued\n5\ncounter\nadd\na\nb`,
      {
        type: 'status',
        id: ID,
        status: 'queued',
        service: 'counter',
        handler: 'add',
        key: 'a\nb',
        at: 5,
      },
    ],
    [
      'a journal commit',
      `j\n${ID}\n3\n1764800000123\njob`,
      { type: 'journal', id: ID, length: 3, service: 'job', at: 1764800000123 },
    ],
    ['an unknown status', `s\n${ID}\nsleeping\n5\ncounter\nadd\nk`, undefined],
    ['a status message cut short', `s\n${ID}\nrunning\n5\ncounter`, undefined],
    ['a journal message with more fields', `j\n${ID}\n3\n5\njob\nextra`, undefined],
    ['another kind', `x\n${ID}\n3\n5`, undefined],
    ['no fields', '', undefined],
  ];
  for (const [what, msg, want] of rows)
    it(what, () => {
      expect(decodeEvent(msg)).toEqual(want);
    });
});
