/**
 * Live events of a store: what changed, as the store's scripts saw it, for the admin API's
 * `GET /events` and the WebSocket ingress's `subscribe` (see docs/ADMIN-API.md "Live updates").
 */
import type { InvocationStatus } from './invocation.js';

/**
 * A change to one invocation: its new status (with its target, so a listener can filter by
 * service without a read), or the length of its journal after a commit of new entries (and its
 * service).
 * `at` is the store's clock (ms since the epoch) when the change was made.
 */
export type InvocationEvent =
  | {
      type: 'status';
      id: string;
      status: InvocationStatus;
      service: string;
      handler: string;
      /** The object or workflow key; absent for a service. */
      key?: string;
      at: number;
    }
  | { type: 'journal'; id: string; length: number; service: string; at: number };

/**
 * What a listener hears: {@link InvocationEvent}s, and `resync` when events may have been lost
 * (the store's subscription reconnected, or could not keep its interest registered): a listener
 * that keeps a view of invocations reads it again.
 */
export type StoreEvent = InvocationEvent | { type: 'resync' };

/** Which events a listener wants; every given field must match (none: every event). */
export interface EventFilter {
  /** Only events of this invocation. */
  id?: string;
  /** Only events of invocations of this service. */
  service?: string;
}

/** A registered listener of {@link StoreEvent}s. */
export interface EventWatch {
  /**
   * Resolves once events published from now on reach the listener (the store subscribed and
   * registered its interest); a reader that shows a view reads it after this, so nothing falls
   * between its read and the first event. Never rejects: when the store cannot listen yet, it
   * resolves and sends `resync` once it can.
   */
  readonly ready: Promise<void>;
  /** Stops listening; what the store held for this listener is freed. */
  close(): void;
}
