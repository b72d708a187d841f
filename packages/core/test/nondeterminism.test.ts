/**
 * Unit tests of replay checking: matchEntry, NonDeterminismError, and the
 * JournalRunner / executor reaction to a divergence (nothing committed).
 */
import { describe, expect, it } from 'vitest';
import {
  DurableError,
  NonDeterminismError,
  handlers,
  isNonDeterminismError,
  object,
  serializeError,
  type Attempt,
  type AttemptListener,
  type CommitResult,
  type Completion,
  type Effect,
  type Entry,
  type NewEntry,
  type ObjectContext,
  type Outcome,
  type SerializedError,
  type StateOp,
} from '@latchkey/core';
import { JournalRunner, Registry, createExecutor, matchEntry } from '@latchkey/core/internal';

function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('matchEntry', () => {
  it('accepts the recorded kind and name', () => {
    expect(() => matchEntry(0, { k: 'run', n: 'a', v: 1 }, 'run', 'a')).not.toThrow();
    expect(() => matchEntry(3, { k: 'set', n: 'x', v: 1 }, 'set', 'x')).not.toThrow();
    expect(() => matchEntry(1, { k: 'clearAll' }, 'clearAll', undefined)).not.toThrow();
    expect(() => matchEntry(1, { k: 'keys', v: [] }, 'keys', undefined)).not.toThrow();
    expect(() => matchEntry(2, { k: 'sleep', due: 5 }, 'sleep', undefined)).not.toThrow();
    expect(() => matchEntry(2, { k: 'sleep', n: 'nap', due: 5 }, 'sleep', 'nap')).not.toThrow();
    // An unnamed ctx.run is recorded with the empty name.
    expect(() => matchEntry(0, { k: 'run', n: '', v: 1 }, 'run', '')).not.toThrow();
  });

  it('names the index, the expected and the actual entry on a name mismatch', () => {
    const e = thrown(() => matchEntry(4, { k: 'run', n: 'a', v: 1 }, 'run', 'b'));
    expect(e).toBeInstanceOf(NonDeterminismError);
    const nd = e as NonDeterminismError;
    expect(nd.index).toBe(4);
    expect(nd.expected).toEqual({ kind: 'run', name: 'a' });
    expect(nd.actual).toEqual({ kind: 'run', name: 'b' });
    expect(nd.message).toBe(
      'Non-determinism at journal index 4: expected run("a"), actual run("b")',
    );
  });

  it('reports kind mismatches, unnamed entries and quotes names as JSON', () => {
    const kind = thrown(() =>
      matchEntry(0, { k: 'set', n: 'x', v: 1 }, 'get', 'x'),
    ) as NonDeterminismError;
    expect(kind.message).toBe(
      'Non-determinism at journal index 0: expected set("x"), actual get("x")',
    );
    const unnamed = thrown(() =>
      matchEntry(7, { k: 'run', n: 'a', v: 1 }, 'sleep', undefined),
    ) as NonDeterminismError;
    expect(unnamed.message).toBe(
      'Non-determinism at journal index 7: expected run("a"), actual sleep',
    );
    expect(unnamed.actual).toEqual({ kind: 'sleep' });
    const cleared = thrown(() =>
      matchEntry(1, { k: 'clearAll' }, 'clear', 'x'),
    ) as NonDeterminismError;
    expect(cleared.expected).toEqual({ kind: 'clearAll' });
    const quoted = thrown(() =>
      matchEntry(2, { k: 'run', n: 'say "hi"', v: 1 }, 'run', ''),
    ) as NonDeterminismError;
    expect(quoted.message).toBe(
      'Non-determinism at journal index 2: expected run("say \\"hi\\""), actual run("")',
    );
    // An unnamed step is not the same as a sleep with no name, nor a run named differently.
    expect(() => matchEntry(0, { k: 'sleep', due: 1 }, 'sleep', 'nap')).toThrow(
      NonDeterminismError,
    );
  });
});

describe('NonDeterminismError', () => {
  it("is a DurableError with a stable kind and Restate's journal-mismatch code, recognised across package copies", () => {
    const e = new NonDeterminismError(1, { kind: 'run', name: 'a' }, { kind: 'set', name: 'y' });
    expect(e).toBeInstanceOf(DurableError);
    expect(e.name).toBe('NonDeterminismError');
    expect(e.kind).toBe('NON_DETERMINISM');
    expect(e.code).toBe(570);
    expect(isNonDeterminismError(e)).toBe(true);
    expect(isNonDeterminismError(new Error('Non-determinism at journal index 1'))).toBe(false);
    expect(isNonDeterminismError({ [Symbol.for('latchkey.NonDeterminismError')]: true })).toBe(
      true,
    );
    expect(serializeError(e)).toEqual({
      name: 'NonDeterminismError',
      code: 'NON_DETERMINISM',
      message: 'Non-determinism at journal index 1: expected run("a"), actual set("y")',
    });
  });
});

/** An in-memory Attempt that records what the runtime asks of the store. */
class RecordingAttempt implements Attempt {
  readonly calls: {
    op: string;
    from?: number;
    entries?: NewEntry[];
    ops?: StateOp[];
    outcome?: Outcome;
    failure?: SerializedError;
  }[] = [];
  private readonly ac = new AbortController();
  readonly invocation;
  constructor(journal: Entry[], attempt: number, state: [string, string][] = []) {
    this.invocation = {
      id: 'inv_00unitunitunitunitunit',
      target: { service: 'obj', handler: 'h', key: 'k' },
      mode: 'exclusive' as const,
      input: '',
      headers: {},
      attempt,
      journal,
      state: new Map(state),
      now: Date.now(),
      completions: new Map<number, Completion>(),
      cancelRequested: false,
      seed: 'test-seed',
    };
  }
  listen(_l: AttemptListener): void {}
  childId(index: number): string {
    return `inv_00child${index}xxxxxxxxxxxxxxxx`;
  }
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  storeNow(): number {
    return Date.now();
  }
  async commit(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    _effects: Effect[],
  ): Promise<CommitResult> {
    this.calls.push({ op: 'commit', from, entries, ops });
    return { now: Date.now(), completions: new Map() };
  }
  async suspend(from: number, entries: NewEntry[], ops: StateOp[]): Promise<'suspended'> {
    this.calls.push({ op: 'suspend', from, entries, ops });
    return 'suspended';
  }
  async complete(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    _effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    this.calls.push({ op: 'complete', from, entries, ops, outcome });
  }
  async retry(failure: SerializedError): Promise<void> {
    this.calls.push({ op: 'retry', failure });
  }
  async pause(failure: SerializedError): Promise<void> {
    this.calls.push({ op: 'pause', failure });
  }
}

const recorded: Entry[] = [
  { k: 'set', n: 'x', v: 1 },
  { k: 'run', n: 'a', v: 'A' },
];

describe('JournalRunner on divergence', () => {
  it('fails the attempt with the NonDeterminismError and commits nothing', async () => {
    const attempt = new RecordingAttempt(recorded, 2);
    const runner = new JournalRunner(attempt, 60_000);
    expect(runner.reserve('set', 'x')).toEqual({ index: 0, recorded: recorded[0] });
    expect(() => runner.reserve('run', 'b')).toThrow(NonDeterminismError);
    const i = await runner.interrupted;
    expect(i.kind).toBe('failed');
    expect((i as { error: Error }).error.message).toBe(
      'Non-determinism at journal index 1: expected run("a"), actual run("b")',
    );
    expect(runner.isEnded).toBe(true);
    expect(attempt.calls).toEqual([]);
  });
});

describe('executor on divergence', () => {
  const def = object({
    name: 'obj',
    handlers: {
      h: handlers.object.exclusive(
        { retryPolicy: { maxAttempts: 2, onMaxAttempts: 'kill' } },
        async (ctx: ObjectContext) => {
          ctx.set('y', 2); // attempt 1 recorded set("x") here
          await ctx.run('b', () => 'B');
          return 'done';
        },
      ),
    },
  });
  const quiet = { ...console, warn: () => undefined, log: () => undefined } as Console;

  it('kills the invocation with the error after the last attempt, committing no entry or state', async () => {
    const attempt = new RecordingAttempt(recorded, 2, [['x', '1']]);
    await createExecutor(new Registry([def]), { logger: quiet }).run(attempt);
    expect(attempt.calls).toEqual([
      {
        op: 'complete',
        from: 2,
        entries: [],
        ops: [],
        outcome: {
          ok: false,
          error: {
            name: 'NonDeterminismError',
            code: 'NON_DETERMINISM',
            message: 'Non-determinism at journal index 0: expected set("x"), actual set("y")',
            status: 500,
          },
        },
      },
    ]);
  });

  it('retries (commits nothing) while attempts remain', async () => {
    const attempt = new RecordingAttempt(recorded, 1, [['x', '1']]);
    await createExecutor(new Registry([def]), { logger: quiet }).run(attempt);
    expect(attempt.calls).toEqual([
      {
        op: 'retry',
        failure: {
          name: 'NonDeterminismError',
          code: 'NON_DETERMINISM',
          message: 'Non-determinism at journal index 0: expected set("x"), actual set("y")',
        },
      },
    ]);
  });
});
