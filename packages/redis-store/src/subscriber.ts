/**
 * The store's subscriber connection: what this process hears on its sharded channels and who
 * handles it (outcomes and completions, live events, the partition owner's timer announcements;
 * hand-offs listen on it themselves, see `handoff.ts`), and what a reconnect must redo.
 */
import type { Redis } from 'ioredis';
import type { StoreContext } from './context.js';

/** Who handles what arrives (and a reconnect). */
export interface SubscriberRoutes {
  events: { onMessage(msg: string): void; onReconnect(): void };
  outcomes: { onMessage(channel: string, msg: string): void; recheckWaiters(): Promise<void> };
  duties: { onMessage(channel: string, msg: string): boolean };
}

/**
 * Routes the subscriber's messages and subscribes (`SSUBSCRIBE`) to this process's outcome and
 * completion channels of every partition: each partition's two share its slot, so one command
 * each (on a cluster, to the partition's master). Returns the outcome channels, by partition.
 */
export async function listen(
  ctx: StoreContext,
  sub: Redis,
  instance: string,
  routes: SubscriberRoutes,
): Promise<string[]> {
  const { keys } = ctx;
  sub.on('smessage', (ch: string, msg: string) => {
    const kind = keys.channelKind(ch);
    if (kind === 'events') routes.events.onMessage(msg);
    else if (kind !== undefined) routes.outcomes.onMessage(ch, msg);
    else routes.duties.onMessage(ch, msg);
  });
  const resubscribed = (): void => {
    void routes.outcomes.recheckWaiters();
    routes.events.onReconnect();
  };
  sub.on('ready', resubscribed);
  // A cluster's sharded subscribers reconnect on their own, then say so with this event.
  sub.on('subscribersReady', resubscribed);
  const own = Array.from({ length: ctx.opts.partitions }, (_, p) =>
    keys.outcomeChannel(p, instance),
  );
  await Promise.all(own.map((ch, p) => sub.ssubscribe(ch, keys.completionChannel(p))));
  return own;
}
