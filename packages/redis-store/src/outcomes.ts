/**
 * Outcomes and completions heard over pub/sub: this process's outcome waiters (ingress calls and
 * attaches), the outcome channel they are resolved from, and the completion channel that tells
 * running attempts about completions, cancels and stops.
 */
import type { AttemptListener, Completion, Outcome, StopSignal } from '@latchkey/core';
import { watchOutcome } from './calls-admin.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { partitionOfId } from './keys.js';
import { decodeOutcome, readOutcome } from './record.js';

interface Waiter {
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

export type DroppableWaiter = Waiter & { drop(): void };

/** What the completion channel stops at once (an attempt running in this process). */
export interface Stoppable {
  stopNow(): void;
}

export class Outcomes {
  private readonly ctx: StoreContext;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly listeners = new Map<string, AttemptListener>();
  /** Attempts running in this process, by invocation id (to stop a killed or paused one at once). */
  readonly running = new Map<string, Stoppable>();
  /**
   * Messages for an invocation whose attempt is starting: registered before the start script
   * runs, so a completion published after the script read the completions is never lost.
   */
  private readonly early = new Map<string, string[]>();
  /**
   * Told of every message on this process's outcome channel: a delegated accept's note (`+` or
   * `=`, see `delegate.ts`), or '' for an outcome.
   */
  noted: (id: string, note: string) => void = () => undefined;

  constructor(ctx: StoreContext) {
    this.ctx = ctx;
  }

  /** Handles a pub/sub message of the outcome or the completion channel. */
  onMessage(channel: string, msg: string): void {
    if (this.ctx.keys.channelKind(channel) === 'outcome') this.onDone(msg);
    else this.onCompletion(msg);
  }

  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome> {
    const { promise, waiter } = this.waitFor(invocationId, signal);
    this.checkNow(invocationId, waiter);
    return promise;
  }

  /**
   * Registers a waiter for an invocation's outcome in this process: resolved from this process's
   * outcome channel, or directly when this process completes the invocation. Callers then make
   * the process a watcher (`checkNow`), unless the accept script registers it for a fresh call.
   */
  waitFor(
    invocationId: string,
    signal?: StopSignal,
  ): { promise: Promise<Outcome>; waiter: DroppableWaiter } {
    let set = this.waiters.get(invocationId);
    if (!set) this.waiters.set(invocationId, (set = new Set()));
    const waiters = set;
    let waiter!: DroppableWaiter;
    const promise = new Promise<Outcome>((resolve, reject) => {
      const onAbort = (): void => waiter.reject(signal?.reason ?? new Error('aborted'));
      const cleanup = (): void => {
        waiters.delete(waiter);
        if (waiters.size === 0) this.waiters.delete(invocationId);
        signal?.removeEventListener('abort', onAbort);
      };
      waiter = {
        resolve: (o) => {
          cleanup();
          resolve(o);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        drop: cleanup,
      };
      waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // Whoever stops listening (an aborted call) must not leave an unhandled rejection behind.
    promise.catch(() => undefined);
    return { promise, waiter };
  }

  /**
   * Makes this process a watcher of an invocation's outcome, resolving the registered waiter at
   * once when the invocation has already completed.
   */
  checkNow(invocationId: string, waiter: Waiter): void {
    this.watch(invocationId).then(
      (o) => {
        if (o) waiter.resolve(o);
      },
      (e: unknown) => waiter.reject(e),
    );
  }

  /**
   * Registers this process's outcome channel with an invocation (the completing script
   * publishes there), or returns the outcome when the invocation has already completed.
   */
  private async watch(invocationId: string): Promise<Outcome | undefined> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return undefined;
    const k = this.ctx.keys;
    const r = await watchOutcome(this.ctx.redis, k.inv(p, invocationId), {
      id: invocationId,
      part: k.part(p),
      channel: this.ctx.outcomeChannel(p),
    });
    return r.tag === 'completed' ? decodeOutcome(r.ok, r.payload) : undefined;
  }

  /** Resolves this process's waiters for an invocation it just completed itself. */
  resolveWaiters(invocationId: string, outcome: Outcome): void {
    const set = this.waiters.get(invocationId);
    if (set) for (const w of [...set]) w.resolve(outcome);
  }

  /** The outcome of a completed invocation, or undefined. */
  readOutcome(invocationId: string): Promise<Outcome | undefined> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return Promise.resolve(undefined);
    return readOutcome(this.ctx.redis, this.ctx.keys.inv(p, invocationId));
  }

  private onDone(msg: string): void {
    const nl = msg.indexOf('\n');
    const id = nl < 0 ? msg : msg.slice(0, nl);
    const note = nl === msg.length - 2 ? msg[nl + 1]! : '';
    this.noted(id, note);
    if (note !== '') return;
    const set = this.waiters.get(id);
    if (!set) return;
    if (nl < 0) {
      void this.readOutcome(id).then((o) => {
        if (o) for (const w of [...set]) w.resolve(o);
      });
      return;
    }
    const rest = msg.slice(nl + 1);
    const nl2 = rest.indexOf('\n');
    const o = decodeOutcome(rest.slice(0, nl2) === 'ok', rest.slice(nl2 + 1));
    const replication = this.ctx.replication;
    const p = partitionOfId(id, this.ctx.opts.partitions);
    if (!replication || p === undefined) {
      for (const w of [...set]) w.resolve(o);
      return;
    }
    // Published by the completing script before its own WAIT: answered once a replica has it.
    replication.barrier(this.ctx.keys.barrier(p)).then(
      () => {
        for (const w of [...set]) w.resolve(o);
      },
      // Not confirmed: the waiters stay; a reconnect's recheck or their caller's retry answers.
      () => undefined,
    );
  }

  private onCompletion(msg: string): void {
    const nl = msg.indexOf('\n');
    const id = msg.slice(0, nl);
    const early = this.early.get(id);
    if (early) {
      // The attempt is starting: keep the message until it listens (see `hold`).
      early.push(msg);
      return;
    }
    const rest = msg.slice(nl + 1);
    if (rest === 'stop') {
      this.running.get(id)?.stopNow();
      return;
    }
    const l = this.listeners.get(id);
    if (!l) return;
    if (rest === 'cancel') {
      l.cancel();
      return;
    }
    const nl2 = rest.indexOf('\n');
    l.completion(Number(rest.slice(0, nl2)), JSON.parse(rest.slice(nl2 + 1)) as Completion);
  }

  /** Attempts register to receive completions while running (undefined: stop). */
  listenTo(id: string, l: AttemptListener | undefined): void {
    if (l) this.listeners.set(id, l);
    else this.listeners.delete(id);
    this.release(id);
  }

  /**
   * Holds the completion messages of an invocation whose attempt is about to start, until it
   * listens. Returns false when someone holds them already (then the holder releases them).
   */
  hold(id: string): boolean {
    if (this.early.has(id)) return false;
    this.early.set(id, []);
    return true;
  }

  /** Whether a stop for the invocation arrived while its messages were held. */
  stopHeld(id: string): boolean {
    return this.early.get(id)?.some((m) => m.endsWith('\nstop')) ?? false;
  }

  /** Hands the held messages of an invocation on (see `hold`). */
  release(id: string): void {
    const msgs = this.early.get(id);
    if (!msgs) return;
    this.early.delete(id);
    for (const m of msgs) this.onCompletion(m);
  }

  /** After a reconnect: registers every waiter again and resolves those whose outcome is in. */
  async recheckWaiters(): Promise<void> {
    for (const [id, set] of this.waiters) {
      try {
        // Registers again too: a Redis restart may have lost the registration.
        const o = await this.watch(id);
        if (o) for (const w of [...set]) w.resolve(o);
      } catch {
        // reconnecting again; the next ready re-checks
      }
    }
  }

  /** Rejects every waiter (the store closes). */
  rejectAll(): void {
    for (const [, set] of this.waiters)
      for (const w of [...set]) w.reject(new StoreError('store closed', 'CLOSED'));
  }
}
