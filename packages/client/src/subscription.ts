/**
 * Live subscriptions: {@link SubscriptionOp} buffers an invocation's progress events for its async
 * iterator, re-subscribes after a reconnection and skips what it already yielded;
 * {@link GhostOp} unsubscribes a subscription the server confirms after the client gave it up.
 */
import type { ClientFrame, InvocationRef, ServerFrame } from '@latchkey/core/protocol';
import type { CallError } from './errors.js';
import { BaseOp, type Host, type Op } from './requests.js';
import type { ProgressEvent, Subscription } from './types.js';
import { errorOf, protocolError, resultValue } from './wire.js';

/** Forgets a subscription the server confirms after the client gave it up: unsubscribes it. */
export class GhostOp implements Op {
  private readonly host: Host;
  readonly id: string;
  constructor(host: Host, id: string) {
    this.host = host;
    this.id = id;
  }
  frame(): undefined {
    return undefined;
  }
  disconnected(): void {
    this.host.remove(this.id);
  }
  receive(f: ServerFrame): void {
    if (f.type === 'subscribed') {
      this.host.write({ id: this.host.nextId(), type: 'unsubscribe', subscription: this.id });
    }
    if (f.type !== 'event') this.host.remove(this.id);
  }
  fail(): void {
    this.host.remove(this.id);
  }
}

/** A live subscription: buffers progress events for its async iterator. */
export class SubscriptionOp<T> extends BaseOp implements Subscription<T> {
  private invId: string | undefined;
  /** The server confirmed the subscription on the current socket. */
  private confirmed = false;
  /** A subscribe frame is out on the current socket. */
  private pending = false;
  private nextIndex = 0;
  private lastStatus: string | undefined;
  private readonly buffer: ProgressEvent<T>[] = [];
  private waiter:
    | { resolve: (r: IteratorResult<ProgressEvent<T>>) => void; reject: (e: unknown) => void }
    | undefined;
  private ended = false;
  private error: CallError | undefined;

  private readonly target: InvocationRef;

  constructor(host: Host, id: string, target: InvocationRef) {
    super(host, id);
    this.target = target;
  }

  get invocationId(): string | undefined {
    return this.invId;
  }

  frame(): ClientFrame {
    this.pending = true;
    this.confirmed = false;
    return {
      id: this.id,
      type: 'subscribe',
      ...(this.invId !== undefined ? { invocationId: this.invId } : this.target),
    };
  }

  disconnected(): void {
    this.pending = false;
    this.confirmed = false;
  }

  receive(f: ServerFrame): void {
    if (this.finished) return;
    const given = (f as { invocationId?: unknown }).invocationId;
    const invocationId = typeof given === 'string' ? given : (this.invId ?? '');
    switch (f.type) {
      case 'subscribed':
        this.invId = invocationId;
        this.pending = false;
        this.confirmed = true;
        return;
      case 'event': {
        // Not trusted to be well-formed: every field is checked.
        const ev = f.event as
          | { kind?: string; status?: string; index?: number; entry?: { k: string; n?: string } }
          | undefined;
        if (ev?.kind === 'journal' && typeof ev.index === 'number') {
          // After a re-subscription the server may replay the journal: skip what was yielded.
          if (ev.index < this.nextIndex) return;
          this.nextIndex = ev.index + 1;
          this.push({
            kind: 'journal',
            invocationId,
            index: ev.index,
            entry: ev.entry ?? { k: 'unknown' },
          });
        } else if (ev?.kind === 'status' && typeof ev.status === 'string') {
          if (ev.status === this.lastStatus) return;
          this.lastStatus = ev.status;
          this.push({ kind: 'status', invocationId, status: ev.status as never });
        }
        return;
      }
      case 'result':
        this.finish();
        this.confirmed = false;
        if (f.ok === true)
          this.push({ kind: 'result', invocationId, ok: true, value: resultValue(f) as T });
        else this.push({ kind: 'result', invocationId, ok: false, error: errorOf(f) });
        this.end(undefined);
        return;
      case 'error':
        this.fail(errorOf(f));
        return;
      default:
        this.fail(protocolError(f.type));
    }
  }

  fail(e: CallError): void {
    if (!this.finish()) return;
    this.release();
    this.end(e);
  }

  /** Tells the server to stop (now, or once it confirms the subscription). */
  private release(): void {
    if (!this.host.isOpen()) return;
    if (this.confirmed)
      this.host.write({ id: this.host.nextId(), type: 'unsubscribe', subscription: this.id });
    else if (this.pending) this.host.register(new GhostOp(this.host, this.id));
    this.confirmed = false;
    this.pending = false;
  }

  private push(ev: ProgressEvent<T>): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: ev, done: false });
    } else this.buffer.push(ev);
  }

  private end(error: CallError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      if (error) {
        this.error = undefined;
        w.reject(error);
      } else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ProgressEvent<T>>> {
    const ev = this.buffer.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.ended) {
      if (this.error) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<ProgressEvent<T>>> {
    if (this.finish()) this.release();
    this.buffer.length = 0;
    this.end(undefined);
    this.error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  async unsubscribe(): Promise<void> {
    await this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
