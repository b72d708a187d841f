/**
 * Live progress of invocations for WebSocket subscribers: one poller per invocation in this
 * process, shared by all its subscribers.
 */
import type { Entry } from '../journal/entry.js';
import type { InvocationStatus, Store } from '../store.js';
import type { ProgressEvent } from './frames.js';

export type { ProgressEvent };

interface Watcher {
  listeners: Set<(e: ProgressEvent) => void>;
  timer: NodeJS.Timeout | undefined;
  status: InvocationStatus | undefined;
  /** Every journal entry reported so far, replayed to late subscribers. */
  described: { k: string; n?: string }[];
  /** The poll in progress, if any. */
  running: Promise<void> | undefined;
  poll(): Promise<void>;
}

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

/** The progress pollers of one ingress process. */
export class ProgressWatchers {
  private readonly watchers = new Map<string, Watcher>();
  private readonly store: Pick<Store, 'progress'>;
  private readonly pollMs: number;

  constructor(store: Pick<Store, 'progress'>, pollMs: number) {
    this.store = store;
    this.pollMs = pollMs;
  }

  /**
   * Shares one progress poller per invocation among all its subscribers in this
   * process. A late subscriber first gets every entry reported so far and the
   * current status, so each subscriber sees the whole journal.
   */
  watch(
    invocationId: string,
    listener: (e: ProgressEvent) => void,
  ): { stop(): void; flush(): Promise<void> } {
    let w = this.watchers.get(invocationId);
    if (!w) {
      const nw: Watcher = {
        listeners: new Set(),
        timer: undefined,
        status: undefined,
        described: [],
        running: undefined,
        poll: () => {
          if (nw.running) return nw.running;
          nw.running = (async () => {
            try {
              const p = await this.store.progress(invocationId, nw.described.length);
              if (!p) return;
              for (const e of p.entries) {
                const index = nw.described.length;
                const entry = describeEntry(e);
                nw.described.push(entry);
                for (const l of nw.listeners) l({ kind: 'journal', index, entry });
              }
              if (p.status !== nw.status) {
                nw.status = p.status;
                for (const l of nw.listeners) l({ kind: 'status', status: p.status });
              }
            } catch {
              // Redis unreachable: the next poll tries again
            } finally {
              nw.running = undefined;
            }
          })();
          return nw.running;
        },
      };
      w = nw;
      this.watchers.set(invocationId, nw);
      nw.timer = setInterval(() => void nw.poll(), this.pollMs);
      nw.timer.unref();
      void nw.poll();
    } else {
      w.described.forEach((entry, index) => listener({ kind: 'journal', index, entry }));
      if (w.status !== undefined) listener({ kind: 'status', status: w.status });
    }
    w.listeners.add(listener);
    const ww = w;
    return {
      stop: () => {
        ww.listeners.delete(listener);
        if (ww.listeners.size === 0) {
          clearInterval(ww.timer);
          this.watchers.delete(invocationId);
        }
      },
      flush: async () => {
        // Let a poll in progress finish, then take one more look: the last entries and the
        // completed status reach the subscriber before its result.
        if (ww.running) await ww.running;
        await ww.poll();
      },
    };
  }

  /** Stops every poller. */
  close(): void {
    for (const w of this.watchers.values()) clearInterval(w.timer);
    this.watchers.clear();
  }
}
