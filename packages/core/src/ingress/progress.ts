/**
 * Live progress of invocations for WebSocket subscribers: one watcher per invocation in this
 * process, shared by all its subscribers, driven by the store's live events.
 *
 * A watcher reads the invocation's progress (status and new journal entries: one read) once
 * its event listener is registered, and again whenever an event of that invocation arrives (reads
 * never overlap: events during a read make one more read after it). Events can be lost (a
 * subscriber reconnect; the store then says `resync`, which reads too), so each watcher also reads
 * once per `rereadMs` (jittered, so thousands of watchers spread their reads): an idle
 * subscription costs about two Redis commands per `rereadMs`, instead of a poll every 200 ms.
 */
import type { Entry } from '../journal/entry.js';
import type { EventWatch, InvocationStatus, Store } from '../store.js';
import type { ProgressEvent } from './frames.js';

export type { ProgressEvent };

/** The default of {@link ProgressWatchers}' safety re-read period (ms). */
export const PROGRESS_REREAD_MS = 60_000;

/**
 * Entry kinds whose name is another invocation's id or an awakeable id: a subscriber sees only
 * their kind (an id would let it reach what it could not reach before).
 */
const NAMELESS = new Set<string>(['attach', 'cancelInv', 'awkResolve']);

function describeEntry(e: Entry): { k: string; n?: string } {
  return 'n' in e && typeof e.n === 'string' && !NAMELESS.has(e.k)
    ? { k: e.k, n: e.n }
    : { k: e.k };
}

type ProgressStore = Pick<Store, 'progress' | 'watchEvents'>;

/** The progress of one invocation, as reported to its subscribers in this process. */
class Watcher {
  readonly listeners = new Set<(e: ProgressEvent) => void>();
  status: InvocationStatus | undefined;
  /** Every journal entry reported so far, replayed to late subscribers. */
  readonly described: { k: string; n?: string }[] = [];
  private running: Promise<void> | undefined;
  /** An event arrived during the read in progress: read once more after it. */
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly events: EventWatch;
  private readonly id: string;
  private readonly store: ProgressStore;
  private readonly rereadMs: number;

  constructor(id: string, store: ProgressStore, rereadMs: number) {
    this.id = id;
    this.store = store;
    this.rereadMs = rereadMs;
    this.events = store.watchEvents({ id }, () => void this.read());
    // The first read once events reach us: nothing falls between the read and the events.
    void this.events.ready.then(() => this.read());
    this.schedule();
  }

  /** Reads the progress now; a read in progress is followed by one more. */
  read(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.readOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Lets a read in progress finish, then reads once more. */
  async flush(): Promise<void> {
    if (this.running) await this.running;
    await this.read();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.events.close();
  }

  private async readOnce(): Promise<void> {
    try {
      const p = await this.store.progress(this.id, this.described.length);
      if (!p || this.stopped) return;
      for (const e of p.entries) {
        const index = this.described.length;
        const entry = describeEntry(e);
        this.described.push(entry);
        for (const l of this.listeners) l({ kind: 'journal', index, entry });
      }
      if (p.status !== this.status) {
        this.status = p.status;
        for (const l of this.listeners) l({ kind: 'status', status: p.status });
      }
    } catch {
      // Redis unreachable: the next event, resync or safety read tries again
    }
  }

  /** The safety re-read: every `rereadMs` on average, between half and one and a half of it. */
  private schedule(): void {
    if (this.rereadMs <= 0 || this.stopped) return;
    this.timer = setTimeout(
      () => {
        void this.read();
        this.schedule();
      },
      this.rereadMs * (0.5 + Math.random()),
    );
    this.timer.unref();
  }
}

/** The progress watchers of one ingress process. */
export class ProgressWatchers {
  private readonly watchers = new Map<string, Watcher>();
  private readonly store: ProgressStore;
  private readonly rereadMs: number;

  /**
   * @param rereadMs - the safety re-read period of each watched invocation (ms; 0 = none), see
   *   the module's comment. Default {@link PROGRESS_REREAD_MS}.
   */
  constructor(store: ProgressStore, rereadMs = PROGRESS_REREAD_MS) {
    this.store = store;
    this.rereadMs = rereadMs;
  }

  /**
   * Shares one watcher per invocation among all its subscribers in this process. A late
   * subscriber first gets every entry reported so far and the current status, so each subscriber
   * sees the whole journal.
   */
  watch(
    invocationId: string,
    listener: (e: ProgressEvent) => void,
  ): { stop(): void; flush(): Promise<void> } {
    let w = this.watchers.get(invocationId);
    if (!w) {
      w = new Watcher(invocationId, this.store, this.rereadMs);
      this.watchers.set(invocationId, w);
    } else {
      w.described.forEach((entry, index) => listener({ kind: 'journal', index, entry }));
      if (w.status !== undefined) listener({ kind: 'status', status: w.status });
    }
    w.listeners.add(listener);
    const ww = w;
    return {
      stop: () => {
        ww.listeners.delete(listener);
        if (ww.listeners.size === 0 && this.watchers.get(invocationId) === ww) {
          ww.stop();
          this.watchers.delete(invocationId);
        }
      },
      flush: () => ww.flush(),
    };
  }

  /** Stops every watcher. */
  close(): void {
    for (const w of this.watchers.values()) w.stop();
    this.watchers.clear();
  }
}
