/**
 * The pure replayer: events in, commands out (no I/O, no timers, no clock), and its driver
 * (`JournalRunner`) with injected timers, so time moves only when the test says so.
 */
import { describe, expect, it } from 'vitest';
import { NonDeterminismError, type Entry } from '@latchkey/core';
import {
  JournalRunner,
  Replayer,
  isStateKind,
  type Command,
  type ReplayerInit,
  type Timers,
} from '@latchkey/core/internal';
import { MemoryAttempt } from './memory-attempt.js';

function replayer(init: Partial<ReplayerInit> = {}): Replayer {
  return new Replayer({
    recorded: [],
    completions: [],
    cancelRequested: false,
    inactivityMs: 1000,
    suspendAfterSteps: false,
    ...init,
  });
}

const kinds = (cmds: Command[]): string[] => cmds.map((c) => c.c);

describe('Replayer (events in, commands out)', () => {
  it('hands out indices and answers recorded entries while replaying', () => {
    const r = replayer({ recorded: [{ k: 'get', n: 'a', v: 1 }] });
    expect(r.replaying).toBe(true);
    expect(r.step({ t: 'reserve', kind: 'get', name: 'a' })).toEqual([
      { c: 'reserved', index: 0, recorded: { k: 'get', n: 'a', v: 1 } },
    ]);
    expect(r.replaying).toBe(false);
    expect(r.step({ t: 'reserve', kind: 'set', name: 'a' })).toEqual([{ c: 'reserved', index: 1 }]);
  });

  it('refuses a mismatching entry with a NonDeterminismError and ends the attempt', () => {
    const r = replayer({ recorded: [{ k: 'run', n: 'a' }] });
    const cmds = r.step({ t: 'reserve', kind: 'run', name: 'b' });
    expect(kinds(cmds)).toEqual(['disarmAll', 'interrupt', 'refused']);
    const refused = cmds.find((c) => c.c === 'refused');
    expect(refused?.c === 'refused' && refused.error).toBeInstanceOf(NonDeterminismError);
    expect(r.life).toBe('ended');
  });

  it('batches filled entries into one commit once someone waits for them', () => {
    const r = replayer();
    for (const n of ['a', 'b']) {
      const [res] = r.step({ t: 'reserve', kind: 'set', name: n });
      expect(
        r.step({
          t: 'fill',
          index: res!.c === 'reserved' ? res.index : -1,
          entry: { k: 'set', n, v: 1 },
          effects: [],
        }),
      ).toEqual([]);
    }
    const cmds = r.step({ t: 'want', upto: 1 });
    expect(cmds).toEqual([
      {
        c: 'commit',
        from: 0,
        entries: [
          { k: 'set', n: 'a', v: 1 },
          { k: 'set', n: 'b', v: 1 },
        ],
        effects: [],
      },
    ]);
    // One commit at a time: a second request waits for the first.
    expect(r.step({ t: 'want', upto: 1 })).toEqual([]);
    expect(r.step({ t: 'committed', from: 0, count: 2, now: 5, completions: new Map() })).toEqual([
      { c: 'flushed', below: 2 },
      { c: 'check' },
    ]);
    expect(r.committed).toBe(2);
  });

  it('settles a store completion only for a kind the store completes', () => {
    const r = replayer();
    r.step({ t: 'reserve', kind: 'run', name: 's' });
    r.step({ t: 'register', index: 0, kind: 'run' });
    expect(r.step({ t: 'completion', index: 0, completion: { ok: true, v: '1' } })).toEqual([]);
    r.step({ t: 'reserve', kind: 'awk', name: undefined });
    r.step({ t: 'register', index: 1, kind: 'awk' });
    expect(r.step({ t: 'completion', index: 1, completion: { ok: true, v: '2' } })).toEqual([
      { c: 'settled', index: 1, completion: { ok: true, v: '2' } },
      { c: 'check' },
    ]);
  });

  it('arms a timer for a sleep not yet due and settles it once the clock reaches it', () => {
    const r = replayer({ recorded: [{ k: 'sleep', due: 2000 }] });
    r.step({ t: 'reserve', kind: 'sleep', name: undefined });
    r.step({ t: 'register', index: 0, kind: 'sleep' });
    expect(r.step({ t: 'timer', index: 0, due: 2000, now: 1500 })).toEqual([
      { c: 'armTimer', index: 0, at: 2000 },
      { c: 'check' },
    ]);
    // Fired early (clock skew): armed again.
    expect(r.step({ t: 'timer', index: 0, now: 1999 })).toEqual([
      { c: 'armTimer', index: 0, at: 2000 },
    ]);
    expect(r.step({ t: 'timer', index: 0, now: 2000 })).toEqual([
      { c: 'settled', index: 0, completion: { ok: true } },
      { c: 'check' },
    ]);
  });

  it('arms the inactivity timer when only waiting, and suspends on it with what it awaits', () => {
    const r = replayer({
      recorded: [
        { k: 'sleep', due: 9000 },
        { k: 'awk', id: 'x' },
      ],
    });
    r.step({ t: 'reserve', kind: 'sleep', name: undefined });
    r.step({ t: 'register', index: 0, kind: 'sleep' });
    r.step({ t: 'timer', index: 0, due: 9000, now: 1000 });
    r.step({ t: 'reserve', kind: 'awk', name: undefined });
    r.step({ t: 'register', index: 1, kind: 'awk' });
    r.step({ t: 'await', index: 1 });
    expect(r.step({ t: 'check' })).toEqual([{ c: 'armIdle', ms: 1000 }]);
    expect(r.step({ t: 'check' })).toEqual([]); // armed once
    expect(r.step({ t: 'idle' })).toEqual([
      { c: 'disarmAll' },
      { c: 'suspend', on: { wakeAt: 9000, awaiting: [1] } },
    ]);
    expect(r.life).toBe('suspending');
    // A failure while suspending waits for the store's answer; refused, it ends the attempt.
    expect(r.step({ t: 'fail', error: new Error('boom') })).toEqual([]);
    const cmds = r.step({
      t: 'resumed',
      from: 2,
      count: 0,
      now: 1000,
      completions: new Map(),
      cancelled: false,
    });
    expect(kinds(cmds)).toEqual(['flushed', 'disarmAll', 'interrupt']);
    expect(r.life).toBe('ended');
  });

  it('carries on when the store refuses a suspension, settling what raced it', () => {
    const r = replayer({ recorded: [{ k: 'awk', id: 'x' }], inactivityMs: 0 });
    r.step({ t: 'reserve', kind: 'awk', name: undefined });
    r.step({ t: 'register', index: 0, kind: 'awk' });
    expect(r.step({ t: 'await', index: 0 })).toEqual([{ c: 'check' }]);
    expect(r.step({ t: 'check' })).toEqual([{ c: 'armIdle', ms: 0 }]);
    expect(kinds(r.step({ t: 'idle' }))).toEqual(['disarmAll', 'suspend']);
    // Deliveries while suspending are kept, not applied.
    expect(r.step({ t: 'completion', index: 0, completion: { ok: true, v: '1' } })).toEqual([]);
    const cmds = r.step({
      t: 'resumed',
      from: 1,
      count: 0,
      now: 1,
      completions: new Map(),
      cancelled: false,
    });
    expect(r.life).toBe('running');
    expect(cmds).toContainEqual({ c: 'settled', index: 0, completion: { ok: true, v: '1' } });
  });

  it('journals a live cancellation where it is observed, rejecting what is pending', () => {
    const r = replayer();
    r.step({ t: 'reserve', kind: 'call', name: 's/h' });
    r.step({ t: 'register', index: 0, kind: 'call', childId: 'child' });
    r.step({ t: 'fill', index: 0, entry: { k: 'call', n: 's/h', id: 'child' }, effects: [] });
    const cmds = r.step({ t: 'cancel' });
    expect(cmds[0]).toMatchObject({ c: 'settled', index: 0, completion: { ok: false } });
    expect(cmds).toContainEqual({
      c: 'commit',
      from: 0,
      entries: [
        { k: 'call', n: 's/h', id: 'child' },
        { k: 'signal', n: 'cancel', v: [0] },
      ],
      effects: [{ t: 'cancel', id: 'child' }],
    });
    // One cancellation per invocation.
    expect(r.step({ t: 'cancel' })).toEqual([]);
  });

  it('replays a recorded cancellation: the next waiting entry is rejected', () => {
    const recorded: Entry[] = [
      { k: 'signal', n: 'cancel', v: [] },
      { k: 'awk', id: 'x' },
    ];
    const r = replayer({ recorded });
    r.step({ t: 'reserve', kind: 'awk', name: undefined });
    r.step({ t: 'register', index: 1, kind: 'awk' });
    expect(r.completable(1)?.completion).toMatchObject({ ok: false });
  });

  it('decides a replayed combinator from its recorded children, firing a recorded timer', () => {
    const recorded: Entry[] = [
      { k: 'awk', id: 'x' },
      { k: 'sleep', due: 99_999 },
      { k: 'comb', n: 'orTimeout', v: [1] },
    ];
    const r = replayer({ recorded });
    for (const [i, kind] of [
      [0, 'awk'],
      [1, 'sleep'],
      [2, 'comb'],
    ] as const) {
      r.step({ t: 'reserve', kind, name: kind === 'comb' ? 'orTimeout' : undefined });
      r.step({ t: 'register', index: i, kind });
    }
    const cmds = r.step({ t: 'combine', index: 2, children: [0, 1], recorded: [1] });
    expect(cmds).toContainEqual({ c: 'settled', index: 1, completion: { ok: true } });
    expect(cmds).toContainEqual({ c: 'combined', index: 2, order: [1], final: true });
  });

  it('keeps the settling order of a live combinator until it decides', () => {
    const r = replayer();
    for (const [i, kind] of [
      [0, 'awk'],
      [1, 'awk'],
      [2, 'comb'],
    ] as const) {
      r.step({ t: 'reserve', kind, name: kind === 'comb' ? 'race' : undefined });
      r.step({ t: 'register', index: i, kind });
    }
    expect(r.step({ t: 'combine', index: 2, children: [0, 1] })).toEqual([]);
    expect(r.step({ t: 'combSettled', index: 2, child: 1 })).toEqual([
      { c: 'combined', index: 2, order: [1], final: false },
    ]);
    r.step({ t: 'combDecided', index: 2 });
    expect(r.step({ t: 'combSettled', index: 2, child: 0 })).toEqual([]);
  });

  it('stops an attempt whose policy does not admit a kind, before the entry exists', () => {
    const r = replayer({ admits: isStateKind });
    expect(r.step({ t: 'reserve', kind: 'get', name: 'a' })).toEqual([{ c: 'reserved', index: 0 }]);
    const cmds = r.step({ t: 'reserve', kind: 'run', name: 'x' });
    expect(kinds(cmds)).toEqual(['disarmAll', 'interrupt', 'refused']);
    expect(cmds[1]).toEqual({ c: 'interrupt', interrupt: { kind: 'fenced' } });
  });
});

/** Timers that fire only when the test advances them. */
class ManualTimers implements Timers {
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  now = 0;
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Moves time to `t`, firing what is due in order. */
  advance(t: number): void {
    for (;;) {
      const due = [...this.pending]
        .filter(([, p]) => p.at <= t)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = t;
  }
}

describe('JournalRunner with an injected clock', () => {
  it('settles a recorded sleep when the injected timer reaches it, then suspends when idle', async () => {
    const attempt = new MemoryAttempt({
      target: { service: 's', handler: 'h' },
      journal: [{ k: 'sleep', due: 1_000_500 }],
    });
    const timers = new ManualTimers();
    const runner = new JournalRunner(attempt, 1000, false, timers);
    const { index } = runner.reserve('sleep', undefined);
    const c = runner.register(index, 'sleep');
    runner.armSleep(c, 1_000_500);
    let woke = false;
    runner.onSettled(c, () => (woke = true));
    expect(timers.pending.size).toBe(2); // the sleep's timer and the inactivity timer
    attempt.clock += 499;
    timers.advance(499);
    await Promise.resolve();
    expect(woke).toBe(false);
    attempt.clock += 1;
    timers.advance(500);
    await Promise.resolve();
    expect(woke).toBe(true);
    // Waiting on an awakeable only: the inactivity timer (1 s) suspends the attempt.
    const a = runner.reserve('awk', undefined);
    runner.fill(a.index, { k: 'awk', id: 'x' });
    const awk = runner.register(a.index, 'awk');
    runner.onSettled(awk, () => undefined);
    await new Promise((r) => setImmediate(r)); // the pending entry is committed first
    timers.advance(timers.now + 999);
    expect(attempt.calls.filter((x) => x.kind === 'suspend')).toHaveLength(0);
    timers.advance(timers.now + 1);
    await attempt.ended;
    expect(await runner.interrupted).toEqual({ kind: 'suspended' });
    expect(attempt.calls.at(-1)).toMatchObject({ kind: 'suspend', awaiting: [1], wakeAt: null });
  });
});
