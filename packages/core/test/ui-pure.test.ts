/**
 * The web UI's pure parts (packages/core/ui/src): the invoke form's JSON Schema check agrees with
 * zod on the schemas zod's `toJSONSchema` writes, the event-stream reader gets every event
 * whatever the chunking, and the state editor sends exactly what changed.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { validate } from '../ui/src/schema.js';
import { EventStreamParser } from '../ui/src/sse.js';
import { statePatch } from '../ui/src/state-patch.js';

describe('validate (the invoke form) agrees with zod', () => {
  const cases: Array<[string, z.ZodType, unknown[]]> = [
    [
      'object with a non-empty string and an optional integer ≥ 1',
      z.object({ name: z.string().min(1), times: z.number().int().min(1).optional() }),
      [
        { name: 'a' },
        { name: '' },
        {},
        { name: 'a', times: 0 },
        { name: 'a', times: 1.5 },
        [],
        null,
        'a',
      ],
    ],
    [
      'strict object',
      z.strictObject({ a: z.boolean() }),
      [{ a: true }, { a: true, b: 1 }, { a: 'true' }],
    ],
    ['enum', z.enum(['red', 'green']), ['red', 'blue', 1]],
    ['literal', z.literal('go'), ['go', 'stop']],
    [
      'array of at most 2 objects',
      z.array(z.object({ sku: z.string() })).max(2),
      [[], [{ sku: 'x' }], [{ sku: 'x' }, { sku: 'y' }, { sku: 'z' }], [{ sku: 1 }], {}],
    ],
    [
      'nullable number in a range',
      z.number().min(0).max(10).nullable(),
      [null, 0, 10, 11, -1, '5'],
    ],
    ['union', z.union([z.string(), z.number()]), ['a', 1, true, null]],
    ['tuple', z.tuple([z.string(), z.number()]), [['a', 1], [1, 'a'], ['a']]],
    ['record of numbers', z.record(z.string(), z.number()), [{}, { a: 1 }, { a: 'x' }]],
    [
      'string with a length range and a pattern',
      z
        .string()
        .min(2)
        .max(4)
        .regex(/^[a-z]+$/),
      ['ab', 'a', 'abcde', 'AB', 'ab1'],
    ],
    [
      'nested',
      z.object({ user: z.object({ email: z.string(), tags: z.array(z.string()) }) }),
      [{ user: { email: 'e', tags: [] } }, { user: { email: 'e', tags: [1] } }, { user: {} }],
    ],
  ];
  for (const [name, schema, values] of cases) {
    it(name, () => {
      const json = z.toJSONSchema(schema);
      for (const v of values) {
        const issues = validate(json, v);
        expect({ v, fits: issues.length === 0 }).toEqual({ v, fits: schema.safeParse(v).success });
      }
    });
  }

  it('says where and what', () => {
    const json = z.toJSONSchema(z.object({ user: z.object({ name: z.string().min(1) }) }));
    expect(validate(json, { user: { name: '' } })).toEqual([
      { path: '$.user.name', message: 'at least 1 character' },
    ]);
    expect(validate(json, { user: {} })).toEqual([{ path: '$.user.name', message: 'required' }]);
  });

  it('follows local references and stops on cycles', () => {
    const schema = {
      $defs: { node: { type: 'object', properties: { next: { $ref: '#/$defs/node' } } } },
      $ref: '#/$defs/node',
    };
    expect(validate(schema, { next: { next: {} } })).toEqual([]);
    expect(validate(schema, { next: 1 })).toEqual([
      { path: '$.next', message: 'expected object, got integer' },
    ]);
    expect(validate({ $ref: '#' }, 1)).toEqual([]);
  });

  it('checks nothing without a schema ({} or true) and refuses everything with false', () => {
    expect(validate({}, { any: 'thing' })).toEqual([]);
    expect(validate(true, 1)).toEqual([]);
    expect(validate(false, 1)).toHaveLength(1);
  });
});

describe('EventStreamParser', () => {
  const stream =
    ': keep-alive\n\n' +
    'data: {"type":"status","id":"inv_1","status":"running"}\n\n' +
    'event: x\r\ndata: {"type":"journal",\r\ndata: "id":"inv_1","length":2}\r\n\r\n' +
    'data: not json\n\n' +
    'data: [1]\n\n' +
    'data: {"type":"status","id":"inv_2","status":"completed"}\n\n';
  const expected = [
    { type: 'status', id: 'inv_1', status: 'running' },
    { type: 'journal', id: 'inv_1', length: 2 },
    { type: 'status', id: 'inv_2', status: 'completed' },
  ];

  it('reads every event, in one chunk or byte by byte', () => {
    expect(new EventStreamParser().push(stream)).toEqual(expected);
    const p = new EventStreamParser();
    const out = [...stream].flatMap((c) => p.push(c));
    expect(out).toEqual(expected);
  });

  it('keeps an unfinished event until its blank line', () => {
    const p = new EventStreamParser();
    expect(p.push('data: {"type":"status"}\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ type: 'status' }]);
  });
});

describe('statePatch', () => {
  it('sends changed and new names, removed ones as null, nothing unchanged', () => {
    const before = { a: 1, b: { x: [1, 2] }, c: 'keep', gone: true };
    const after = { a: 2, b: { x: [1, 2] }, c: 'keep', added: null };
    expect(statePatch(before, after)).toEqual({ a: 2, gone: null, added: null });
    expect(statePatch(before, before)).toEqual({});
  });
});
