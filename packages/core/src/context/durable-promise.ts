import { timerMs, type Duration } from '../define/duration.js';
import {
  TerminalError,
  TimeoutError,
  deserializeTerminalError,
  isTerminalError,
} from '../errors.js';
import type { Completion } from '../journal/entry.js';
import { never, type Completable, type JournalRunner } from '../runtime/journal-runner.js';
import { durable } from './journaled.js';

/** Decodes a completion into the promise's value, or throws its failure. */
export type Decode<T> = (c: Completion) => T;

/** Decodes a JSON completion; failures become `TerminalError`s. */
export function decodeJson<T>(c: Completion): T {
  if (!c.ok) throw deserializeTerminalError(c.e);
  return (c.v === undefined || c.v === '' ? undefined : JSON.parse(c.v)) as T;
}

/**
 * A journaled promise (Restate's `RestatePromise`): the result of a context
 * call whose outcome is durable. Await it like any promise, race it with
 * {@link RestatePromise}, or bound it with {@link DurablePromise.orTimeout}.
 */
export class DurablePromise<T> implements PromiseLike<T> {
  /** @internal */
  readonly runner: JournalRunner;
  /** @internal */
  readonly decode: Decode<T>;
  private comp: Completable | undefined | (() => Completable | undefined);
  private native: Promise<T> | undefined;

  /**
   * @internal `completable` may be a function that creates the journal entry when the promise is
   * first awaited or combined (a workflow's `ctx.promise(name)`, awaited directly).
   */
  constructor(
    runner: JournalRunner,
    completable: Completable | undefined | (() => Completable | undefined),
    decode: Decode<T>,
  ) {
    this.runner = runner;
    this.comp = completable;
    this.decode = decode;
  }

  /** @internal The journal entry this promise settles with. */
  get completable(): Completable | undefined {
    if (typeof this.comp === 'function') this.comp = this.comp();
    return this.comp;
  }

  private promise(): Promise<T> {
    if (this.native) return this.native;
    const c = this.completable;
    if (!c || this.runner.isEnded) return (this.native = never());
    this.native = new Promise<T>((resolve, reject) => {
      this.runner.onSettled(c, (done) => {
        if (this.runner.isEnded && c.kind !== 'run') return; // the attempt is over: park
        try {
          resolve(this.decode(done));
        } catch (e) {
          reject(e);
        }
      });
    });
    return this.native;
  }

  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.promise().then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.promise().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.promise().finally(onfinally);
  }

  /**
   * Fails with a {@link TimeoutError} unless this settles within `duration`
   * (a durable timer; the winner is journaled).
   */
  orTimeout(duration: Duration): DurablePromise<T> {
    if (this.runner.isEnded) return this;
    const timer = sleepPromise(this.runner, timerMs(duration, 'timeout'), undefined);
    return combine('orTimeout', [this, timer]) as DurablePromise<T>;
  }

  /** Maps the value or failure (Restate's `map`). */
  map<U>(fn: (value?: T, failure?: TerminalError) => U): DurablePromise<U> {
    return new DurablePromise<U>(this.runner, this.completable, (c) => {
      let value: T;
      try {
        value = this.decode(c);
      } catch (e) {
        if (isTerminalError(e)) return fn(undefined, e);
        throw e;
      }
      return fn(value, undefined);
    });
  }
}

/** Creates a durable sleep promise (shared by `ctx.sleep` and `orTimeout`). */
export function sleepPromise(
  runner: JournalRunner,
  ms: number,
  name: string | undefined,
): DurablePromise<void> {
  const decode: Decode<void> = (done) => {
    if (!done.ok) throw deserializeTerminalError(done.e);
  };
  return durable<void>(runner, 'sleep', name, decode, {
    fresh: () => ({ entry: name === undefined ? { k: 'sleep', ms } : { k: 'sleep', n: name, ms } }),
    then: (c, recorded) => {
      if (recorded?.k === 'sleep') {
        runner.armSleep(c, recorded.due);
        return;
      }
      runner.flushThrough(c.index).then(
        () => runner.armSleep(c, runner.dueOf(c.index)),
        () => undefined,
      );
    },
  });
}

type CombKind = 'all' | 'race' | 'any' | 'allSettled' | 'orTimeout';

/** A settled result of `allSettled`. */
export type SettledResult<T> =
  { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown };

function outcomeOf(
  p: DurablePromise<unknown>,
): { ok: true; value: unknown } | { ok: false; error: unknown } {
  const c = p.completable?.completion;
  if (!c) throw new Error('combinator child not settled');
  try {
    return { ok: true, value: p.decode(c) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Decides a combinator from the children settled so far (`order`); undefined while undecided. */
function evaluate(
  kind: CombKind,
  ps: DurablePromise<unknown>[],
  order: number[],
): (() => unknown) | undefined {
  const byIndex = new Map(ps.map((p) => [p.completable!.index, p]));
  const settled = order.map((i) => byIndex.get(i)!);
  switch (kind) {
    case 'race': {
      const first = settled[0];
      if (!first) return undefined;
      const o = outcomeOf(first);
      return () => {
        if (!o.ok) throw o.error;
        return o.value;
      };
    }
    case 'orTimeout': {
      const first = settled[0];
      if (!first) return undefined;
      if (first === ps[1]) {
        return () => {
          throw new TimeoutError();
        };
      }
      const o = outcomeOf(first);
      return () => {
        if (!o.ok) throw o.error;
        return o.value;
      };
    }
    case 'all': {
      for (const p of settled) {
        const o = outcomeOf(p);
        if (!o.ok) {
          return () => {
            throw o.error;
          };
        }
      }
      if (settled.length < ps.length) return undefined;
      const values = ps.map((p) => (outcomeOf(p) as { value: unknown }).value);
      return () => values;
    }
    case 'any': {
      for (const p of settled) {
        const o = outcomeOf(p);
        if (o.ok) return () => o.value;
      }
      if (settled.length < ps.length) return undefined;
      const errors = ps.map((p) => (outcomeOf(p) as { error: unknown }).error);
      return () => {
        throw new TerminalError(
          `all promises failed: ${errors.map((e) => (e as Error).message).join('; ')}`,
        );
      };
    }
    case 'allSettled': {
      if (settled.length < ps.length) return undefined;
      const results: SettledResult<unknown>[] = ps.map((p) => {
        const o = outcomeOf(p);
        return o.ok
          ? { status: 'fulfilled', value: o.value }
          : { status: 'rejected', reason: o.error };
      });
      return () => results;
    }
  }
}

/**
 * Combines durable promises. The children that settled before the combinator
 * decided, in settling order, are journaled, so a replay picks the same winner.
 */
export function combine(kind: CombKind, ps: DurablePromise<unknown>[]): DurablePromise<unknown> {
  const runner = ps.find((p) => p.runner)?.runner;
  if (!runner) throw new TypeError('combinators need at least one context promise');
  if (ps.some((p) => p.runner !== runner))
    throw new TypeError('cannot combine promises of different invocations');
  if (runner.isEnded || ps.some((p) => p.completable === undefined))
    return new DurablePromise(runner, undefined, () => undefined);
  const { index, recorded } = runner.reserve('comb', kind);
  const cc = runner.register(index, 'comb');
  let decided: (() => unknown) | undefined;
  const decode = (): unknown => decided!();
  const children = ps.map((p) => p.completable!);
  if (recorded?.k === 'comb') {
    // Replayed: the recorded children decide it (see Replayer.combine).
    runner.combine(index, children, recorded.v, (order) => {
      decided = evaluate(kind, ps, order);
      runner.settle(index, { ok: true });
    });
    return new DurablePromise(runner, cc, decode);
  }
  runner.combine(index, children, undefined, (order) => {
    if (decided) return;
    const d = evaluate(kind, ps, order);
    if (!d) return;
    decided = d;
    runner.decided(index);
    runner.fill(index, { k: 'comb', n: kind, v: [...order] });
    runner.flushThrough(index).then(
      () => runner.settle(index, { ok: true }),
      () => undefined,
    );
  });
  return new DurablePromise(runner, cc, decode);
}

/** Promise combinators over context promises, as Restate's `RestatePromise`. */
export const RestatePromise = {
  /** Resolves with every value, or fails with the first failure. */
  all<T extends readonly DurablePromise<unknown>[]>(
    ps: T,
  ): DurablePromise<{ [K in keyof T]: Awaited<T[K]> }> {
    if (ps.length === 0) throw new TypeError('RestatePromise.all needs at least one promise');
    return combine('all', [...ps]) as DurablePromise<{ [K in keyof T]: Awaited<T[K]> }>;
  },
  /** Settles like the first promise to settle. */
  race<T extends readonly DurablePromise<unknown>[]>(ps: T): DurablePromise<Awaited<T[number]>> {
    if (ps.length === 0) throw new TypeError('RestatePromise.race needs at least one promise');
    return combine('race', [...ps]) as DurablePromise<Awaited<T[number]>>;
  },
  /** Resolves with the first success, or fails when all fail. */
  any<T extends readonly DurablePromise<unknown>[]>(ps: T): DurablePromise<Awaited<T[number]>> {
    if (ps.length === 0) throw new TypeError('RestatePromise.any needs at least one promise');
    return combine('any', [...ps]) as DurablePromise<Awaited<T[number]>>;
  },
  /** Resolves with every outcome once all settled. */
  allSettled<T extends readonly DurablePromise<unknown>[]>(
    ps: T,
  ): DurablePromise<{ [K in keyof T]: SettledResult<Awaited<T[K]>> }> {
    if (ps.length === 0)
      throw new TypeError('RestatePromise.allSettled needs at least one promise');
    return combine('allSettled', [...ps]) as DurablePromise<{
      [K in keyof T]: SettledResult<Awaited<T[K]>>;
    }>;
  },
};
