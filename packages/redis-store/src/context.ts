/**
 * What every room of the store shares: the connection with its scripts, the key layout, the
 * options and this process's identity. Built once by `RedisStore` (the facade) and handed to
 * each module; no module imports another's class, they get what they need as callbacks.
 */
import type { StoreObserver } from '@latchkey/core';
import type { Replication } from './durability.js';
import type { Keys } from './keys.js';
import type { StoreConfig } from './options.js';
import type { ScriptedRedis } from './scripts.js';

export interface StoreContext {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly opts: StoreConfig;
  /** This process's name in invocation records (the worker that leases). */
  readonly workerId: string;
  /** The sharded channel of partition p on which this process hears the outcomes it waits for. */
  readonly outcomeChannel: (p: number) => string;
  readonly logger: Pick<Console, 'warn' | 'error' | 'info'>;
  /** `wiped`: the boot marker vanished (Redis was wiped or replaced); `closed`: the store closed. */
  readonly life: { wiped: boolean; closed: boolean };
  /** With `durability: 'replicated'`: the WAITs after writes (see `durability.ts`). */
  readonly replication?: Replication | undefined;
  /** Who the store reports its script latency and sweeps to (`Store.observe`), once set. */
  readonly watch: ScriptWatch;
}

/** The holder of a store's observer (set after the store is built, read on every script call). */
export interface ScriptWatch {
  observer?: StoreObserver | undefined;
}
