/**
 * The cheap hand-off: a process that makes an invocation ready without a free worker slot of its
 * own (an ingress-only process, above all) wakes a worker of another process with one sharded
 * pub/sub message instead of a BullMQ job cycle (add, blocking pop, `moveToActive`,
 * `moveToFinished`). Three kinds of message:
 * - a wake-up (`W<ds>\n<job data JSON>`), as a job is: the receiving worker runs the start script
 *   in a free slot of its local fast path, or adds the mailbox job when it has none;
 * - a lease (`L<epoch>\n<now>\n<start JSON>\n<state JSON>\n<input>`), from an accept script:
 *   the script leased the fresh invocation to that worker as `startAttempt` would (only when
 *   somebody heard the message) and sent everything its first attempt needs, so the worker starts
 *   at once; with no free slot it hands the lease back (`releaseLease`) and adds the mailbox job.
 *   Above 64 KiB of input and state the accept script sends a wake-up instead;
 * - a delegated accept (`A<JSON>\n<input>`, see `delegate.ts`): a call the worker accepts itself,
 *   after an eager run of its handler.
 *
 * Worker processes announce themselves in a registry (`<prefix>:workers`, expiry on the Redis
 * clock and free slots, renewed every second; a process hands off only to workers that had free
 * slots when last read, else it adds the mailbox job) and listen on one channel per partition,
 * `<prefix>:{p}:hand:<worker>`: it carries the partition's hash tag, so the accept script of that
 * partition publishes to it itself (`SPUBLISH`; its reply says whether anybody heard it) and a
 * Redis Cluster keeps the message on the partition's shard. Other callers (reconciler, deliveries,
 * control) publish from here. Nobody heard it (the worker died or left): the mailbox job instead.
 * A worker dying after it heard one: the invocation's deadline in `due` passes and the reconciler
 * dispatches it again, as for a lost job.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { StartedInvocation, TargetMode } from '@latchkey/core';
import { announceWorker } from './calls-admin.js';
import type { StoreContext } from './context.js';
import { decodeDelegation, delegationMessage, type DelegatedAccept } from './delegate.js';
import { freshInvocation, type JobData } from './wire.js';

/** How long a worker's announcement lasts unless renewed (ms); it renews every third. */
const ANNOUNCE_TTL_MS = 3000;
/** How old a process's list of live workers may get before it reads the registry again (ms). */
const REFRESH_MS = 1000;

/** A fresh invocation leased to this worker by an accept script, from its hand-off message. */
export interface HandedLease {
  data: JobData;
  inv: StartedInvocation;
  epoch: string;
  now: number;
}

/** Takes hand-offs in the receiving worker: wake-ups, leases and delegated accepts. */
export interface HandoffReceiver {
  wake(data: JobData, ds: number): void;
  lease(l: HandedLease): void;
  accept(d: DelegatedAccept): void;
}

/**
 * What an accept script needs to hand a fresh invocation over (`acceptInvocation`'s ARGV 21-23):
 * the chosen worker's channel for the partition, its name (the lease's `w`), and the start JSON.
 */
export interface HandoffTarget {
  channel: string;
  worker: string;
  start: string;
}

/** The start JSON of a lease message: what a fresh invocation's first attempt needs but its input. */
interface StartJson {
  i: string;
  s: string;
  h: string;
  k: string;
  m: TargetMode;
  /** True for a keyed target (`k` may be '' then too). */
  kd?: 1;
  hdr: Record<string, string>;
  rs: string;
  tc?: string;
}

/** The start JSON of a fresh invocation (see {@link HandoffTarget}). */
export function startJson(inv: {
  id: string;
  service: string;
  handler: string;
  key?: string | undefined;
  mode: TargetMode;
  headers?: Record<string, string> | undefined;
  seed: string;
  trace?: string | undefined;
}): string {
  const j: StartJson = {
    i: inv.id,
    s: inv.service,
    h: inv.handler,
    k: inv.key ?? '',
    m: inv.mode,
    hdr: inv.headers ?? {},
    rs: inv.seed,
  };
  if (inv.key !== undefined) j.kd = 1;
  if (inv.trace !== undefined) j.tc = inv.trace;
  return JSON.stringify(j);
}

/** Decodes a lease message after its `L` (see the module's comment), or undefined. */
function decodeLease(msg: string): HandedLease | undefined {
  const cut: number[] = [];
  let at = 0;
  for (let n = 0; n < 4; n++) {
    at = msg.indexOf('\n', at);
    if (at < 0) return undefined;
    cut.push(at++);
  }
  const [a, b, c, d] = cut as [number, number, number, number];
  const j = JSON.parse(msg.slice(b + 1, c)) as StartJson;
  const now = Number(msg.slice(a + 1, b));
  const inv = freshInvocation(
    {
      id: j.i,
      service: j.s,
      handler: j.h,
      key: j.kd ? j.k : undefined,
      mode: j.m,
      input: msg.slice(d + 1),
      headers: j.hdr,
      seed: j.rs,
      trace: j.tc,
    },
    now,
    JSON.parse(msg.slice(c + 1, d)) as string[],
  );
  return { data: { i: j.i, s: j.s, k: j.k, m: j.m }, inv, epoch: msg.slice(1, a), now };
}

export class Handoffs {
  private readonly ctx: StoreContext;
  private readonly sub: Redis;
  /** This process's name in the registry and in its channels' names (when it takes hand-offs). */
  readonly name = randomBytes(8).toString('hex');
  /** Live workers of other processes with free slots, as last read. */
  private peers: string[] = [];
  private turn = 0;
  private readAt = -Infinity;
  private reading: Promise<void> | undefined;
  private receiver: HandoffReceiver | undefined;
  /** This worker's free slots, for its announcements. */
  private free: () => number = () => 0;
  private announcing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly suffix: string;

  constructor(ctx: StoreContext, sub: Redis) {
    this.ctx = ctx;
    this.sub = sub;
    this.suffix = `:hand:${this.name}`;
  }

  /**
   * A live worker of another process to hand an invocation to (round robin), or undefined for
   * none known. Reads the registry again (in the background) when it is stale.
   */
  private pick(): string | undefined {
    if (!this.ctx.opts.handoff || this.ctx.life.closed) return undefined;
    if (Date.now() - this.readAt > REFRESH_MS) void this.refresh();
    const n = this.peers.length;
    if (n === 0) return undefined;
    this.turn = (this.turn + 1) % n;
    return this.peers[this.turn];
  }

  /** A worker for an accept script to hand a fresh invocation of partition p to, or undefined. */
  target(p: number, start: () => string): HandoffTarget | undefined {
    const w = this.pick();
    return w === undefined
      ? undefined
      : { channel: this.ctx.keys.handoffChannel(p, w), worker: w, start: start() };
  }

  /** Wakes a live worker of another process for an invocation; false when nobody heard it. */
  send(p: number, data: JobData, ds: number): Promise<boolean> {
    return this.publish(p, `W${ds}\n${JSON.stringify(data)}`);
  }

  /**
   * Asks a live worker of another process to accept a call (see `delegate.ts`); false when none
   * is known or nobody heard it.
   */
  delegate(p: number, d: DelegatedAccept): Promise<boolean> {
    return this.publish(p, delegationMessage(d));
  }

  /** Publishes a message to a live worker of another process; false when nobody heard it. */
  private async publish(p: number, msg: string): Promise<boolean> {
    const w = this.pick();
    if (w === undefined) return false;
    const heard = Number(await this.ctx.redis.spublish(this.ctx.keys.handoffChannel(p, w), msg));
    if (heard > 0) return true;
    this.unheard(w);
    return false;
  }

  /** Nobody listens on that worker's channels (it died or left): skip it until the next read. */
  unheard(worker: string): void {
    this.peers = this.peers.filter((w) => w !== worker);
  }

  /** Reads the registry (and, while this process takes hand-offs, renews its announcement). */
  refresh(): Promise<void> {
    if (this.reading) return this.reading;
    this.readAt = Date.now();
    const a = this.announcing
      ? { worker: this.name, ttlMs: ANNOUNCE_TTL_MS, free: this.free() }
      : { worker: '', ttlMs: 0, free: 0 };
    this.reading = announceWorker(this.ctx.redis, this.ctx.keys.workers, a)
      .then(
        (live) => {
          // Saturated workers (none free when they announced) get no hand-offs until they have.
          const peers: string[] = [];
          for (const [w, free] of live) if (w !== this.name && free > 0) peers.push(w);
          this.peers = peers;
        },
        () => undefined,
      )
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /**
   * Takes hand-offs from now on: listens on this process's channel of every partition, then
   * announces itself with its free slots (so nobody publishes before it listens) and renews that
   * every third of the announcement's life.
   */
  async listen(receiver: HandoffReceiver, free: () => number): Promise<void> {
    this.receiver = receiver;
    this.free = free;
    this.sub.on('smessage', this.onMessage);
    // One SSUBSCRIBE per partition: on a Redis Cluster one command's channels share a slot.
    const subs: Promise<unknown>[] = [];
    for (let p = 0; p < this.ctx.opts.partitions; p++)
      subs.push(this.sub.ssubscribe(this.ctx.keys.handoffChannel(p, this.name)));
    await Promise.all(subs);
    this.announcing = true;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), ANNOUNCE_TTL_MS / 3);
    this.timer.unref();
  }

  /**
   * Takes no more hand-offs: withdraws the announcement, then stops listening. Messages already
   * on their way still reach the receiver (a closing worker adds their mailbox jobs); once it
   * stopped listening, publishers hear that nobody got theirs and add the jobs themselves.
   */
  async stop(): Promise<void> {
    if (!this.announcing) return;
    this.announcing = false;
    clearInterval(this.timer);
    await this.reading;
    await announceWorker(this.ctx.redis, this.ctx.keys.workers, {
      worker: this.name,
      ttlMs: 0,
      free: 0,
    }).catch(() => undefined);
    const channels: string[] = [];
    for (let p = 0; p < this.ctx.opts.partitions; p++)
      channels.push(this.ctx.keys.handoffChannel(p, this.name));
    await Promise.all(channels.map((c) => this.sub.sunsubscribe(c).catch(() => undefined)));
    this.sub.off('smessage', this.onMessage);
    this.receiver = undefined;
  }

  private readonly onMessage = (channel: string, msg: string): void => {
    const receiver = this.receiver;
    if (!receiver || !channel.endsWith(this.suffix)) return;
    try {
      if (msg[0] === 'L') {
        const l = decodeLease(msg);
        if (l) receiver.lease(l);
        return;
      }
      if (msg[0] === 'A') {
        const d = decodeDelegation(msg);
        if (d) receiver.accept(d);
        return;
      }
      const nl = msg.indexOf('\n');
      const data = JSON.parse(msg.slice(nl + 1)) as JobData;
      const ds = Number(msg.slice(1, nl));
      if (msg[0] === 'W' && typeof data.i === 'string' && Number.isFinite(ds))
        receiver.wake({ i: data.i, s: data.s, k: data.k, m: data.m }, ds);
    } catch {
      // Not a message of ours: only Latchkey's scripts and stores publish on these channels.
    }
  };
}
