/**
 * The WebSocket subscriptions' progress watchers (`ingress/progress.ts`), without Redis: they
 * read an invocation's progress once its event listener is registered and once per event (never
 * two reads at once: events during a read make exactly one more), never poll, replay what they
 * know to late subscribers, and free their listener when the last subscriber stops.
 */
import { describe, expect, it } from 'vitest';
import type { Entry } from '../src/journal/entry.js';
import type { EventFilter, EventWatch, InvocationStatus, StoreEvent } from '../src/store.js';
import { ProgressWatchers, type ProgressEvent } from '../src/ingress/progress.js';

/** A store of one invocation whose reads the test releases one by one. */
class FakeStore {
  status: InvocationStatus = 'running';
  journal: Entry[] = [];
  reads = 0;
  listeners = new Set<(e: StoreEvent) => void>();
  private pending: (() => void)[] = [];
  private readyNow: () => void = () => undefined;
  readonly ready = new Promise<void>((r) => (this.readyNow = r));

  watchEvents(_filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch {
    this.listeners.add(listener);
    return { ready: this.ready, close: () => void this.listeners.delete(listener) };
  }

  progress(
    _id: string,
    from: number,
  ): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined> {
    this.reads++;
    return new Promise((resolve) =>
      this.pending.push(() => resolve({ status: this.status, entries: this.journal.slice(from) })),
    );
  }

  /** Answers the reads waiting now. */
  answer(): void {
    for (const p of this.pending.splice(0)) p();
  }

  get waiting(): number {
    return this.pending.length;
  }

  tell(): void {
    for (const l of this.listeners)
      l({ type: 'journal', id: 'inv', length: 0, service: 's', at: 1 });
  }

  becomeReady(): void {
    this.readyNow();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('progress watchers', () => {
  it('read once the listener is registered and once per event, one read at a time, never by polling', async () => {
    const store = new FakeStore();
    const watchers = new ProgressWatchers(store, 0);
    const seen: ProgressEvent[] = [];
    const w = watchers.watch('inv', (e) => seen.push(e));
    await tick();
    expect(store.reads).toBe(0);
    store.becomeReady();
    await tick();
    expect(store.reads).toBe(1);
    store.journal.push({ k: 'run', n: 'a', v: '1' });
    // Three events while the first read is out: one more read after it, not three.
    store.tell();
    store.tell();
    store.tell();
    store.answer();
    await tick();
    expect(store.reads).toBe(2);
    store.answer();
    await tick();
    expect(store.waiting).toBe(0);
    expect(seen).toEqual([
      { kind: 'journal', index: 0, entry: { k: 'run', n: 'a' } },
      { kind: 'status', status: 'running' },
    ]);
    // Quiet: nothing is read without an event.
    await new Promise((r) => setTimeout(r, 300));
    expect(store.reads).toBe(2);
    store.status = 'completed';
    store.tell();
    await tick();
    store.answer();
    await tick();
    expect(seen.at(-1)).toEqual({ kind: 'status', status: 'completed' });
    w.stop();
    expect(store.listeners.size).toBe(0);
  });

  it('replays what it knows to a late subscriber and keeps one listener until the last stops', async () => {
    const store = new FakeStore();
    store.journal.push({ k: 'run', n: 'a', v: '1' }, { k: 'sleep', due: 5 });
    store.becomeReady();
    const watchers = new ProgressWatchers(store, 0);
    const first: ProgressEvent[] = [];
    const a = watchers.watch('inv', (e) => first.push(e));
    await tick();
    store.answer();
    await tick();
    const late: ProgressEvent[] = [];
    const b = watchers.watch('inv', (e) => late.push(e));
    expect(late).toEqual(first);
    expect(late).toHaveLength(3);
    expect(store.listeners.size).toBe(1);
    a.stop();
    expect(store.listeners.size).toBe(1);
    b.stop();
    expect(store.listeners.size).toBe(0);
  });

  it('reads again after a resync', async () => {
    const store = new FakeStore();
    store.becomeReady();
    const watchers = new ProgressWatchers(store, 0);
    const w = watchers.watch('inv', () => undefined);
    await tick();
    store.answer();
    await tick();
    expect(store.reads).toBe(1);
    for (const l of store.listeners) l({ type: 'resync' });
    await tick();
    expect(store.reads).toBe(2);
    store.answer();
    w.stop();
  });

  it('reads on its safety period: no earlier than half of it', async () => {
    const store = new FakeStore();
    store.becomeReady();
    const watchers = new ProgressWatchers(store, 200);
    const t0 = Date.now();
    const w = watchers.watch('inv', () => undefined);
    await tick();
    store.answer();
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (store.reads >= 2) resolve();
        else setTimeout(check, 5);
      };
      check();
    });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(99);
    expect(elapsed).toBeLessThan(5_000);
    store.answer();
    w.stop();
    watchers.close();
  });
});
