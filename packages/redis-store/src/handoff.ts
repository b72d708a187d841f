/**
 * The cheap hand-off: a process that makes an invocation ready without a free worker slot of its
 * own (an ingress-only process, above all) wakes a worker of another process with one sharded
 * pub/sub message instead of a BullMQ job cycle (add, blocking pop, `moveToActive`,
 * `moveToFinished`). The message is only a wake-up, as a job is: the receiving worker runs the
 * start script in a free slot of its local fast path, or adds the mailbox job when it has none.
 *
 * Worker processes announce themselves in a registry (`<prefix>:workers`, expiry on the Redis
 * clock, renewed every second) and listen on one channel per partition,
 * `<prefix>:{p}:hand:<worker>`: it carries the partition's hash tag, so the accept script of that
 * partition publishes to it itself (`SPUBLISH`; its reply says whether anybody heard it) and a
 * Redis Cluster keeps the message on the partition's shard. Other callers (reconciler, deliveries,
 * control) publish from here. Nobody heard it (the worker died or left): the mailbox job instead.
 * A worker dying after it heard one: the invocation's deadline in `due` passes and the reconciler
 * dispatches it again, as for a lost job.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { announceWorker } from './calls-admin.js';
import type { StoreContext } from './context.js';
import type { JobData } from './wire.js';

/** How long a worker's announcement lasts unless renewed (ms); it renews every third. */
const ANNOUNCE_TTL_MS = 3000;
/** How old a process's list of live workers may get before it reads the registry again (ms). */
const REFRESH_MS = 1000;

/** Takes a hand-off (the invocation and its dispatch sequence) in the receiving worker. */
export type HandoffReceiver = (data: JobData, ds: number) => void;

/** A worker chosen for a hand-off: its channel for the partition and the message. */
export interface HandoffTarget {
  channel: string;
  message: string;
}

export class Handoffs {
  private readonly ctx: StoreContext;
  private readonly sub: Redis;
  /** This process's name in the registry and in its channels' names (when it takes hand-offs). */
  readonly name = randomBytes(8).toString('hex');
  /** Live workers of other processes, as last read. */
  private peers: string[] = [];
  private turn = 0;
  private readAt = -Infinity;
  private reading: Promise<void> | undefined;
  private receiver: HandoffReceiver | undefined;
  private announcing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly suffix: string;

  constructor(ctx: StoreContext, sub: Redis) {
    this.ctx = ctx;
    this.sub = sub;
    this.suffix = `:hand:${this.name}`;
  }

  /**
   * A live worker of another process to hand an invocation of partition p to (round robin), or
   * undefined for none known. Reads the registry again (in the background) when it is stale.
   */
  target(p: number, data: JobData, ds: number): HandoffTarget | undefined {
    if (!this.ctx.opts.handoff || this.ctx.life.closed) return undefined;
    if (Date.now() - this.readAt > REFRESH_MS) void this.refresh();
    const n = this.peers.length;
    if (n === 0) return undefined;
    this.turn = (this.turn + 1) % n;
    return {
      channel: this.ctx.keys.handoffChannel(p, this.peers[this.turn]!),
      message: `${ds}\n${JSON.stringify(data)}`,
    };
  }

  /** Hands an invocation to a live worker of another process; false when nobody heard it. */
  async send(p: number, data: JobData, ds: number): Promise<boolean> {
    const t = this.target(p, data, ds);
    if (!t) return false;
    const heard = Number(await this.ctx.redis.spublish(t.channel, t.message));
    if (heard > 0) return true;
    this.unheard(t.channel);
    return false;
  }

  /** Nobody listens on that channel (its worker died or left): skip it until the next read. */
  unheard(channel: string): void {
    const worker = channel.slice(channel.lastIndexOf(':') + 1);
    this.peers = this.peers.filter((w) => w !== worker);
  }

  /** Reads the registry (and, while this process takes hand-offs, renews its announcement). */
  refresh(): Promise<void> {
    if (this.reading) return this.reading;
    this.readAt = Date.now();
    const me = this.announcing ? this.name : '';
    this.reading = announceWorker(this.ctx.redis, this.ctx.keys.workers, me, ANNOUNCE_TTL_MS)
      .then(
        (live) => {
          this.peers = live.filter((w) => w !== this.name);
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
   * announces itself (so nobody publishes before it listens) and renews that every third of the
   * announcement's life.
   */
  async listen(receiver: HandoffReceiver): Promise<void> {
    this.receiver = receiver;
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
    await announceWorker(this.ctx.redis, this.ctx.keys.workers, this.name, 0).catch(
      () => undefined,
    );
    const channels: string[] = [];
    for (let p = 0; p < this.ctx.opts.partitions; p++)
      channels.push(this.ctx.keys.handoffChannel(p, this.name));
    await Promise.all(channels.map((c) => this.sub.sunsubscribe(c).catch(() => undefined)));
    this.sub.off('smessage', this.onMessage);
    this.receiver = undefined;
  }

  private readonly onMessage = (channel: string, msg: string): void => {
    if (!this.receiver || !channel.endsWith(this.suffix)) return;
    const nl = msg.indexOf('\n');
    let data: JobData;
    try {
      data = JSON.parse(msg.slice(nl + 1)) as JobData;
    } catch {
      return;
    }
    const ds = Number(msg.slice(0, nl));
    if (typeof data.i !== 'string' || !Number.isFinite(ds)) return;
    this.receiver(data, ds);
  };
}
