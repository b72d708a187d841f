/**
 * `GET /events` of the admin API: live events as `text/event-stream` (docs/ADMIN-API.md "Live
 * updates"). Each stream is one listener of the store's live events; the store hears them once
 * per process whatever the number of streams. Streams are bounded (`maxEventStreams`), a stream
 * whose client stops reading is closed (`maxEventBufferedBytes`), and a closed connection frees
 * its listener and timer at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { IngressError } from '../errors.js';
import type { AdminStore, EventFilter, StoreEvent } from '../store.js';

/** Options of the admin API's event streams. */
export interface EventStreamOptions {
  /** Event streams one admin server serves at once; more are refused with 429. Default 64. */
  maxEventStreams?: number;
  /** Period of the keep-alive comment on an idle stream (ms). Default 15 s. */
  eventKeepAliveMs?: number;
  /**
   * Bytes a stream may have waiting for a client that does not read; beyond, the stream is
   * closed (the client reconnects and reads its view again). Default 1 MiB.
   */
  maxEventBufferedBytes?: number;
}

/** The {@link EventStreamOptions} among other options (those given, nothing else). */
export function eventStreamOptions(o: EventStreamOptions): EventStreamOptions {
  const out: EventStreamOptions = {};
  if (o.maxEventStreams !== undefined) out.maxEventStreams = o.maxEventStreams;
  if (o.eventKeepAliveMs !== undefined) out.eventKeepAliveMs = o.eventKeepAliveMs;
  if (o.maxEventBufferedBytes !== undefined) out.maxEventBufferedBytes = o.maxEventBufferedBytes;
  return out;
}

/** The query parameters `GET /events` takes. */
const PARAMS = new Set(['service', 'id']);
/** The longest filter value accepted (a service name is at most 128 characters, an id less). */
const MAX_FILTER = 256;

/** Parses the filters of `GET /events`: exact `service` and `id`, nothing else. */
export function eventFilter(query: URLSearchParams): EventFilter {
  const filter: EventFilter = {};
  for (const [name, value] of query) {
    if (!PARAMS.has(name))
      throw new IngressError(
        400,
        'INVALID_FILTER',
        `unknown filter ${JSON.stringify(name.slice(0, 64))} (GET /events takes service and id)`,
      );
    if (value === '' || value.length > MAX_FILTER || query.getAll(name).length > 1)
      throw new IngressError(
        400,
        'INVALID_FILTER',
        `filter ${name} must be given once, 1 to ${MAX_FILTER} characters`,
      );
    filter[name as keyof EventFilter] = value;
  }
  return filter;
}

/** The event streams of one admin server. */
export class EventStreams {
  private readonly store: Pick<AdminStore, 'watchEvents'>;
  private readonly max: number;
  private readonly keepAliveMs: number;
  private readonly maxBuffered: number;
  private open = 0;

  constructor(store: Pick<AdminStore, 'watchEvents'>, options: EventStreamOptions = {}) {
    this.store = store;
    this.max = options.maxEventStreams ?? 64;
    this.keepAliveMs = options.eventKeepAliveMs ?? 15_000;
    this.maxBuffered = options.maxEventBufferedBytes ?? 1024 * 1024;
  }

  /** Streams open now. */
  get size(): number {
    return this.open;
  }

  /**
   * Answers `GET /events` (the caller checked the token): refuses bad filters (400) and a stream
   * beyond the limit (429) before anything is written, then streams until the client leaves.
   */
  serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    const filter = eventFilter(query);
    if (this.open >= this.max)
      throw new IngressError(
        429,
        'TOO_MANY_STREAMS',
        `this admin server serves at most ${this.max} event streams at once`,
      );
    this.open++;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    let done = false;
    const write = (text: string): void => {
      if (done) return;
      res.write(text);
      // A client that stopped reading: close rather than hold ever more bytes for it.
      if (res.writableLength > this.maxBuffered) res.destroy();
    };
    const watch = this.store.watchEvents(filter, (e: StoreEvent) =>
      write(`data: ${JSON.stringify(e)}\n\n`),
    );
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), this.keepAliveMs);
    keepAlive.unref();
    const end = (): void => {
      if (done) return;
      done = true;
      this.open--;
      clearInterval(keepAlive);
      watch.close();
    };
    // The response closes when the client leaves (or the server closes the connection).
    res.on('close', end);
    req.resume();
    // The first bytes once events flow: a client that saw them misses nothing after its read.
    void watch.ready.then(() => write(': ready\n\n'));
  }
}
