/**
 * Keeping a page fresh: `GET /events` (server-sent events, read with `fetch` because
 * `EventSource` cannot send the Authorization header) tells the page when to re-read; when the
 * server has no `/events`, the page re-reads on a slow timer instead. Re-reads never overlap: the
 * next one starts only after the last one answered (a slow API is not piled on).
 */
import { apiUrl, authHeaders, getToken } from './api.js';
import { EventStreamParser, type AdminEvent } from './sse.js';

export type { AdminEvent };

/** How a page is kept fresh right now (shown to the operator). */
export type LiveMode = 'connecting' | 'live' | 'polling' | 'reconnecting' | 'stopped';

/** Options of {@link keepFresh}. */
export interface LiveOptions {
  /** Filters of `GET /events` (`service`, `id`). */
  filter?: Record<string, string | undefined>;
  /** Only events this accepts trigger a re-read (default: all). */
  accept?: (e: AdminEvent) => boolean;
  /** Re-read every this many ms when the server has no `/events`; default 4,000. */
  pollMs?: number;
  /** Wait this long after an event for more before re-reading; default 200 ms. */
  settleMs?: number;
  /** Told whenever the mode changes. */
  onMode?: (mode: LiveMode) => void;
}

/**
 * Calls `reload` now and whenever the server says something changed (or on a timer without
 * `/events`), never two at once. Returns the function that stops it.
 */
export function keepFresh(reload: () => Promise<void>, o: LiveOptions = {}): () => void {
  const pollMs = o.pollMs ?? 4000;
  const settleMs = o.settleMs ?? 200;
  const ac = new AbortController();
  let running = false;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let mode: LiveMode = 'connecting';
  const setMode = (m: LiveMode): void => {
    if (m === mode) return;
    mode = m;
    o.onMode?.(m);
  };

  const run = async (): Promise<void> => {
    if (ac.signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await reload();
    } catch {
      // the page shows its own failure; the next trigger tries again
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      void run();
    }
  };
  const soon = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void run();
    }, settleMs);
  };
  const poll = (): void => {
    setMode('polling');
    const tick = async (): Promise<void> => {
      await run();
      if (!ac.signal.aborted) pollTimer = setTimeout(() => void tick(), pollMs);
    };
    pollTimer = setTimeout(() => void tick(), pollMs);
  };

  const listen = async (): Promise<void> => {
    let backoff = 1000;
    while (!ac.signal.aborted) {
      let res: Response;
      try {
        res = await fetch(apiUrl(['events'], o.filter), {
          headers: { ...authHeaders(getToken()), accept: 'text/event-stream' },
          signal: ac.signal,
          cache: 'no-store',
        });
      } catch {
        if (ac.signal.aborted) return;
        setMode('reconnecting');
        await sleep(backoff, ac.signal);
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      if (res.status === 404 || res.status === 405 || !res.body) {
        // A server without live events: re-read on a timer.
        poll();
        return;
      }
      if (!res.ok) {
        setMode('reconnecting');
        await sleep(backoff, ac.signal);
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      setMode('live');
      backoff = 1000;
      // Events may have been missed while (re)connecting: read once now.
      soon();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventStreamParser();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const e of parser.push(value)) if (!o.accept || o.accept(e)) soon();
        }
      } catch {
        // the stream broke: reconnect below
      }
      if (ac.signal.aborted) return;
      setMode('reconnecting');
      await sleep(backoff, ac.signal);
    }
  };

  void run();
  void listen();
  return () => {
    ac.abort();
    if (timer !== undefined) clearTimeout(timer);
    if (pollTimer !== undefined) clearTimeout(pollTimer);
    setMode('stopped');
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
