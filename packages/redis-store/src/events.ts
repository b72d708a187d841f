/**
 * Live events: the status changes and journal commits the Lua scripts publish (`emit_status`,
 * `emit_journal` in `lua/prelude.lua`), heard once per process on the store's subscriber
 * connection and handed to this process's listeners (the admin API's `GET /events`, the
 * WebSocket ingress's subscriptions).
 *
 * The scripts publish only while some process listens: each partition's flag key
 * (`<prefix>:{p}:ev`) then holds the channel's name. A process with listeners sets every flag
 * with a TTL (`eventsFlagTtlMs`) and renews them every third of it; when its last listener goes it
 * stops renewing, and the flags expire unless another process renews them. So nobody listening
 * costs each status-changing script one GET, and a process that listens pays one pipeline of
 * `partitions` SETs per renewal, whatever its number of listeners.
 *
 * A lost event (a subscriber reconnect, a renewal that came too late) only costs freshness:
 * listeners then get `resync` and read again.
 */
import type {
  EventFilter,
  EventWatch,
  InvocationEvent,
  InvocationStatus,
  StoreEvent,
} from '@latchkey/core';
import type { Redis } from 'ioredis';
import { INVOCATION_STATUSES } from '@latchkey/core';
import { partitionBatch } from './connection.js';
import type { StoreContext } from './context.js';

type Listener = (e: StoreEvent) => void;

interface Registration {
  filter: EventFilter;
  listener: Listener;
}

const STATUSES: ReadonlySet<string> = new Set<string>(INVOCATION_STATUSES);

/**
 * Decodes one message of the events channel (see `emit_status` and `emit_journal` in
 * `lua/prelude.lua`); undefined for anything else.
 */
export function decodeEvent(msg: string): InvocationEvent | undefined {
  const parts = msg.split('\n');
  const [kind, id, third, at] = parts;
  if (id === undefined || third === undefined || at === undefined) return undefined;
  if (kind === 'j' && parts.length === 5) {
    return { type: 'journal', id, length: Number(third), service: parts[4]!, at: Number(at) };
  }
  if (kind === 's' && parts.length >= 7 && STATUSES.has(third)) {
    // The key comes last and may hold newlines of its own.
    const key = parts.slice(6).join('\n');
    return {
      type: 'status',
      id,
      status: third as InvocationStatus,
      service: parts[4]!,
      handler: parts[5]!,
      ...(key === '' ? {} : { key }),
      at: Number(at),
    };
  }
  return undefined;
}

function matches(f: EventFilter, e: InvocationEvent): boolean {
  return (
    (f.id === undefined || f.id === e.id) && (f.service === undefined || f.service === e.service)
  );
}

/** This process's listeners of live events, and the interest it registers for them in Redis. */
export class Events {
  private readonly ctx: StoreContext;
  private readonly sub: Redis;
  /** Listeners of one invocation, by its id (the WebSocket subscriptions: one lookup per event). */
  private readonly byId = new Map<string, Set<Registration>>();
  /** Listeners of every invocation or of a service (the admin API's streams). */
  private readonly others = new Set<Registration>();
  private count = 0;
  /** The channel subscription, made once (ioredis subscribes again after a reconnect). */
  private subscribed: Promise<void> | undefined;
  /** The flags' renewal while there are listeners, and the one in progress. */
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private lastRenewal = 0;

  constructor(ctx: StoreContext, sub: Redis) {
    this.ctx = ctx;
    this.sub = sub;
  }

  /** Registers a listener (see `Store.watchEvents`). */
  watch(filter: EventFilter, listener: Listener): EventWatch {
    const reg: Registration = { filter: { ...filter }, listener };
    if (filter.id !== undefined) {
      let set = this.byId.get(filter.id);
      if (!set) this.byId.set(filter.id, (set = new Set()));
      set.add(reg);
    } else {
      this.others.add(reg);
    }
    this.count++;
    // Later listeners find the interest registered (or being registered): no command of their own.
    const ready = this.count === 1 ? this.start() : this.current();
    let closed = false;
    return {
      ready,
      close: () => {
        if (closed) return;
        closed = true;
        this.count--;
        if (filter.id !== undefined) {
          const set = this.byId.get(filter.id);
          set?.delete(reg);
          if (set?.size === 0) this.byId.delete(filter.id);
        } else {
          this.others.delete(reg);
        }
        if (this.count === 0) this.stop();
      },
    };
  }

  /** Handles a message of the events channel. */
  onMessage(msg: string): void {
    const e = decodeEvent(msg);
    if (!e) return;
    const set = this.byId.get(e.id);
    if (set) for (const r of [...set]) if (matches(r.filter, e)) r.listener(e);
    for (const r of [...this.others]) if (matches(r.filter, e)) r.listener(e);
  }

  /**
   * After the subscriber reconnected: events published meanwhile are lost. Registers the interest
   * again (Redis may have restarted without it) and tells every listener to read again.
   */
  onReconnect(): void {
    if (this.count === 0) return;
    void this.renew().then(() => this.resync());
  }

  /** Stops renewing (the store closes). */
  close(): void {
    this.stop();
  }

  /** The first listener: subscribe (once) and register the interest now, then keep it alive. */
  private start(): Promise<void> {
    const { keys, opts } = this.ctx;
    const channels = Array.from({ length: opts.partitions }, (_, p) => keys.eventsChannel(p));
    // One SSUBSCRIBE per partition: each channel is its partition's (on a cluster, its master's).
    this.subscribed ??= Promise.all(channels.map((ch) => this.sub.ssubscribe(ch))).then(
      () => undefined,
      () => {
        // Redis unreachable: subscribe again on the next watch; ioredis re-subscribes on reconnect.
        this.subscribed = undefined;
      },
    );
    if (!this.timer) {
      const every = Math.max(1, Math.floor(this.ctx.opts.eventsFlagTtlMs / 3));
      this.timer = setInterval(() => void this.renew(), every);
      this.timer.unref();
    }
    return Promise.all([this.subscribed, this.renew()]).then(() => undefined);
  }

  private current(): Promise<void> {
    return Promise.all([this.subscribed, this.renewing]).then(() => undefined);
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.lastRenewal = 0;
  }

  /**
   * Sets every partition's flag to the channel's name with the TTL, in one pipeline. A renewal
   * later than the TTL after the previous one may have let the flags expire: `resync`.
   */
  private renew(): Promise<void> {
    if (this.renewing) return this.renewing;
    const { redis, keys, opts } = this.ctx;
    const pipe = partitionBatch(redis);
    for (let p = 0; p < opts.partitions; p++)
      pipe.set(keys.eventsFlag(p), keys.eventsChannel(p), 'PX', opts.eventsFlagTtlMs);
    const started = Date.now();
    this.renewing = pipe.exec().then(
      () => {
        this.renewing = undefined;
        const late = this.lastRenewal !== 0 && started - this.lastRenewal > opts.eventsFlagTtlMs;
        this.lastRenewal = started;
        if (late && this.count > 0) this.resync();
      },
      () => {
        // Redis unreachable: the next renewal (or the reconnect) registers the interest again.
        this.renewing = undefined;
      },
    );
    return this.renewing;
  }

  private resync(): void {
    for (const set of [...this.byId.values()])
      for (const r of [...set]) r.listener({ type: 'resync' });
    for (const r of [...this.others]) r.listener({ type: 'resync' });
  }
}
