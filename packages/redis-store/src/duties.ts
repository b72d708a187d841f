/**
 * Partition duties: each partition is swept by one live worker process at a time, and that
 * process fires the partition's timers. So the background load on Redis stays flat as worker
 * processes are added (N idle processes cost what one does, plus one heartbeat each), and a
 * timer fires from the partition's `due` zset without a mailbox job per sleeper.
 *
 * - **Who is alive**: every worker process beats the live-process registry (`{w}:live`, a zset
 *   of duty ids to expiry) every `dutyRenewMs`; the beat answers every live id.
 * - **Who should own what**: every process computes the same assignment from the same live set
 *   ({@link assignPartitions}: rendezvous hashing capped at ceil(partitions / live), so a
 *   process holds about its fair share and a newcomer takes partitions from the others).
 * - **Who does own it**: the partition's duty lease (`{p}:own`, `claimPartition-1.lua`), taken
 *   with SET NX PX and renewed only by its holder, one call per partition (one slot each). A
 *   process gives up what it should no longer own; a dead one's leases expire after
 *   `dutyLeaseMs` and the processes now assigned take them. Two views that briefly disagree
 *   never share a partition: the lease decides.
 * - **Sweeping**: the owner sweeps a partition when its earliest deadline comes (each sweep
 *   answers the ms until the next), at least every `reconcileIntervalMs`, and at once when a
 *   script announces an earlier timer on the partition's channel (`{p}:tm`, see `timer_at` in
 *   `lua/prelude.lua`). A lost announcement costs at most one interval.
 *
 * Crash safety does not depend on any of this: the sweep is the same script whoever runs it, two
 * sweeps at once are harmless, and a partition without an owner only waits.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { claimPartition, heartbeatProcess } from './calls-admin.js';
import type { StoreContext } from './context.js';
import { fnv1a } from './keys.js';
import type { SweepResult } from './reconciler.js';

/** What the duties run for an owned partition. */
export interface DutyWork {
  /** Sweeps partition p once, firing at most `fireMax` due timers (-1: all; see `reconciler.ts`). */
  sweep(p: number, fireMax: number): Promise<SweepResult>;
  /** Attempts this process can start now in its own slots (Infinity: it has no such limit). */
  freeSlots(): number;
  /** Removes partition p's expired index entries. */
  expire(p: number): Promise<void>;
}

/** Murmur3's 32-bit finalizer: spreads FNV-1a's bits, so close ids score far apart. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Which live process owns each partition: each partition goes to the process that scores it
 * highest (rendezvous hashing) among those still below ceil(partitions / live). Depends only on
 * the set of ids, so every process computes the same answer; a process joining or leaving moves
 * few partitions. Pure.
 */
export function assignPartitions(partitions: number, live: readonly string[]): string[] {
  const ids = [...new Set(live)].sort();
  if (ids.length === 0) return [];
  const cap = Math.ceil(partitions / ids.length);
  const load = new Map<string, number>();
  const owners: string[] = [];
  for (let p = 0; p < partitions; p++) {
    let best = '';
    let bestScore = -1;
    for (const id of ids) {
      if ((load.get(id) ?? 0) >= cap) continue;
      const score = mix(fnv1a(`${p}\u0000${id}`));
      if (score > bestScore) {
        best = id;
        bestScore = score;
      }
    }
    owners.push(best);
    load.set(best, (load.get(best) ?? 0) + 1);
  }
  return owners;
}

/**
 * A timer the owner could not start in a slot of its own for this long goes out through the
 * mailbox, where any other worker process can take it (ms; alone, it waits `graceMs`).
 */
const SPILL_MS = 1000;
/** While timers wait for a free slot, the partition is swept again at least this often (ms). */
const HELD_RETRY_MS = 50;

/** One owned partition's sweep schedule. */
interface Owned {
  timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now() ms). */
  at: number;
  /** A sweep is running; `again`: sweep once more when it ends. */
  busy: boolean;
  again: boolean;
  /** When the expired index entries were last removed. */
  expiredAt: number;
  /** Due timers wait for a free slot; `spill`: they waited too long, fire them all. */
  held: boolean;
  spill: boolean;
  /** When the held timer has waited long enough to spill (performance.now() ms). */
  spillAt: number;
}

/** This process's partition duties (started with its first worker, stopped with its last). */
export class Duties {
  /** This process's name in the registry and in the duty leases (unique per store instance). */
  readonly id: string;
  private readonly ctx: StoreContext;
  private readonly sub: Redis;
  private readonly work: DutyWork;
  private readonly owned = new Map<number, Owned>();
  /** Timer channel name → partition. */
  private readonly channels = new Map<string, number>();
  private running = false;
  private ticker: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** Free slots promised to sweeps in flight (what they fire takes slots once they answer). */
  private promised = 0;
  /** How many worker processes were alive at the last heartbeat. */
  private live = 1;

  constructor(ctx: StoreContext, sub: Redis, work: DutyWork) {
    this.ctx = ctx;
    this.sub = sub;
    this.work = work;
    this.id = `${ctx.workerId}:${randomUUID().slice(0, 8)}`;
    for (let p = 0; p < ctx.opts.partitions; p++) this.channels.set(ctx.keys.timerChannel(p), p);
  }

  private get leaseMs(): number {
    return this.ctx.opts.dutyLeaseMs ?? this.ctx.opts.leaseMs;
  }

  private get renewMs(): number {
    return this.ctx.opts.dutyRenewMs ?? Math.max(1, Math.floor(this.leaseMs / 3));
  }

  /** The partitions this process owns now, in order (for tests and operators). */
  partitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick(0);
  }

  /** Gives every partition back (another process takes it at once) and leaves the registry. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.ticker);
    await this.ticking;
    const parts = this.partitions();
    for (const p of parts) this.drop(p);
    const k = this.ctx.keys;
    const args = { dutyId: this.id, op: 'release' as const, leaseMs: this.leaseMs };
    await Promise.all([
      ...parts.map((p) => claimPartition(this.ctx.redis, k.owner(p), args).catch(() => false)),
      heartbeatProcess(this.ctx.redis, k.liveProcesses, {
        dutyId: this.id,
        op: 'leave',
        ttlMs: this.leaseMs,
      }).catch(() => undefined),
    ]);
  }

  /** A message on the store's subscriber: true when it was a timer announcement of ours. */
  onMessage(channel: string, message: string): boolean {
    const p = this.channels.get(channel);
    if (p === undefined) return false;
    const ms = Number(message);
    this.plan(p, Number.isFinite(ms) ? Math.max(0, ms) : 0);
    return true;
  }

  private tick(inMs: number): void {
    if (!this.running) return;
    this.ticker = setTimeout(() => {
      this.ticking = this.settle().then((short) => {
        this.ticking = undefined;
        // While a partition assigned to this process is still held elsewhere (its old owner
        // died or has not let go yet), look again sooner.
        this.tick(short ? Math.min(this.renewMs, this.ctx.opts.reconcileIntervalMs) : this.renewMs);
      });
    }, inMs);
    this.ticker.unref();
  }

  /** One round: beat, compute the assignment, renew, take and give back. True when short of it. */
  private async settle(): Promise<boolean> {
    const k = this.ctx.keys;
    const leaseMs = this.leaseMs;
    let live: string[];
    try {
      live = await heartbeatProcess(this.ctx.redis, k.liveProcesses, {
        dutyId: this.id,
        op: 'beat',
        ttlMs: leaseMs,
      });
    } catch {
      return true; // Redis unreachable: the leases we hold run out by themselves
    }
    if (!this.running) return false;
    this.live = new Set([...live, this.id]).size;
    const owners = assignPartitions(this.ctx.opts.partitions, [...live, this.id]);
    const held = await Promise.all(
      owners.map(async (owner, p) => {
        const mine = owner === this.id;
        if (!mine && !this.owned.has(p)) return true;
        const op = mine ? ('take' as const) : ('release' as const);
        const ok = await claimPartition(this.ctx.redis, k.owner(p), {
          dutyId: this.id,
          op,
          leaseMs,
        }).catch(() => undefined);
        if (ok === undefined) return !mine; // unknown: try again next round
        if (!mine) this.drop(p);
        else if (!ok) this.drop(p);
        else if (!this.owned.has(p)) await this.adopt(p);
        return !mine || ok;
      }),
    );
    return held.includes(false);
  }

  /** Starts owning partition p: hear its timer announcements, then sweep it at once. */
  private async adopt(p: number): Promise<void> {
    const o: Owned = {
      timer: undefined,
      at: Infinity,
      busy: false,
      again: false,
      expiredAt: 0,
      held: false,
      spill: false,
      spillAt: 0,
    };
    this.owned.set(p, o);
    // Subscribed before the first sweep: a timer announced after it is heard.
    await this.sub.ssubscribe(this.ctx.keys.timerChannel(p)).catch(() => undefined);
    this.plan(p, 0);
  }

  /** Stops owning partition p here (its lease is released by the caller or lapsed). */
  private drop(p: number): void {
    const o = this.owned.get(p);
    if (!o) return;
    clearTimeout(o.timer);
    this.owned.delete(p);
    void this.sub.sunsubscribe(this.ctx.keys.timerChannel(p)).catch(() => undefined);
  }

  /** A slot of this process's worker came free: partitions with timers waiting for one sweep now. */
  slotFreed(): void {
    for (const [p, o] of this.owned) if (o.held) this.plan(p, 1);
  }

  /** Sweeps partition p in `inMs` ms, unless a sweep is planned sooner. */
  private plan(p: number, inMs: number): void {
    const o = this.owned.get(p);
    if (!o) return;
    const at = performance.now() + inMs;
    if (o.timer && o.at <= at) return;
    clearTimeout(o.timer);
    o.at = at;
    o.timer = setTimeout(() => void this.sweep(p, o), inMs);
    o.timer.unref();
  }

  private async sweep(p: number, o: Owned): Promise<void> {
    o.timer = undefined;
    o.at = Infinity;
    if (o.busy) {
      o.again = true;
      return;
    }
    o.busy = true;
    const interval = this.ctx.opts.reconcileIntervalMs;
    let wait = interval;
    try {
      const now = performance.now();
      if (now - o.expiredAt >= interval) {
        o.expiredAt = now;
        void this.work.expire(p);
      }
      // Timers fire into this process's free slots, so each starts at once; what does not fit
      // stays due until a slot frees, or goes out through the mailbox once it waited SPILL_MS.
      // Slots promised to sweeps still in flight (of other partitions) are not free, and what is
      // free is shared among this sweep and the partitions sweeping or waiting for slots: a sweep
      // promised every free slot would leave the partitions swept meanwhile none, though it may
      // fire far fewer timers than it was promised.
      const free = this.work.freeSlots() - this.promised;
      const sharing = 1 + [...this.owned.values()].filter((x) => x.busy || x.held).length;
      const fireMax =
        o.spill || free === Infinity ? -1 : Math.max(0, Math.ceil(Math.max(0, free) / sharing));
      if (fireMax === 0 && o.held && now < o.spillAt) {
        // Timers wait here for a slot: a sweep now could fire none (slotFreed plans the next one).
        this.plan(p, Math.min(HELD_RETRY_MS, o.spillAt - now));
        return;
      }
      if (fireMax > 0) this.promised += fireMax;
      let r;
      try {
        r = await this.work.sweep(p, fireMax);
      } finally {
        if (fireMax > 0) this.promised -= fireMax;
      }
      if (r.waitMs !== undefined) wait = Math.min(wait, r.waitMs);
      o.held = r.held > 0;
      // Spilling helps most where another process can take the jobs: alone, a mailbox job costs
      // this process more than the slot it waits for, so it waits up to graceMs (its slots may all
      // be taken by long handlers: then its mailbox workers run the timers).
      const spillMs = this.live > 1 ? SPILL_MS : this.ctx.opts.graceMs;
      o.spillAt = performance.now() + spillMs - Math.max(0, r.heldLateMs);
      o.spill = o.held && r.heldLateMs >= spillMs;
      // Held timers are due (so is the earliest deadline): sweep again when a slot frees
      // (`slotFreed`), after HELD_RETRY_MS at the latest, or at once to spill them.
      if (o.held) wait = o.spill ? 0 : HELD_RETRY_MS;
    } catch {
      // Never: a sweep reports its own failures as nothing done. Sweep again after the interval.
    } finally {
      o.busy = false;
    }
    if (this.owned.get(p) !== o) return; // given up meanwhile
    if (o.again) {
      o.again = false;
      wait = 0;
    }
    this.plan(p, wait);
  }
}
