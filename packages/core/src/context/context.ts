import { durationMs, type Duration } from '../define/duration.js';
import {
  DurableError,
  ErrorCode,
  TerminalError,
  deserializeTerminalError,
  ensureError,
  isTerminalError,
  serializeError,
} from '../errors.js';
import { never, type JournalRunner } from '../runtime/journal-runner.js';
import type { StartedInvocation } from '../store.js';
import { createRand } from './rand.js';
import type { ContextDate, ObjectContext, Rand, Request, RunOptions } from './types.js';

/** A JSON round trip, so the first execution returns exactly what a replay would. */
function roundTrip<T>(v: T): T {
  if (v === undefined) return v;
  return JSON.parse(JSON.stringify(v)) as T;
}

function runDelay(opts: RunOptions, retry: number): number {
  const initial = opts.initialRetryInterval !== undefined ? durationMs(opts.initialRetryInterval) : 50;
  const factor = opts.retryIntervalFactor ?? 2;
  const cap = opts.maxRetryInterval !== undefined ? durationMs(opts.maxRetryInterval) : 10_000;
  return Math.min(cap, initial * factor ** retry);
}

/**
 * The object user handlers receive. Implements every context flavour; the
 * handler's declared type decides which methods the user sees, and writes from
 * shared handlers are refused at run time too.
 */
export class HandlerContext implements ObjectContext {
  readonly rand: Rand;
  readonly date: ContextDate;
  readonly console: Console;
  private readonly state: Map<string, string>;
  private readonly requestValue: Request;

  private readonly runner: JournalRunner;
  private readonly inv: StartedInvocation;
  private readonly writable: boolean;

  constructor(runner: JournalRunner, inv: StartedInvocation, writable: boolean, logger: Console) {
    this.runner = runner;
    this.inv = inv;
    this.writable = writable;
    this.state = new Map(inv.state);
    this.rand = createRand(inv.id);
    this.date = {
      now: () => this.run('Date.now', () => Date.now()),
      toJSON: async () => new Date(await this.date.now()).toISOString(),
    };
    this.console = quietConsole(logger, () => runner.replaying, `[${inv.target.service}/${inv.target.handler}][${inv.id}]`);
    this.requestValue = {
      id: inv.id,
      headers: new Map(Object.entries(inv.headers)),
      attemptHeaders: new Map(Object.entries(inv.headers)),
      body: new TextEncoder().encode(inv.input),
      attempt: inv.attempt,
    };
  }

  get key(): string {
    const k = this.inv.target.key;
    if (k === undefined) throw new TerminalError('this handler has no key (it is a service handler)');
    return k;
  }

  request(): Request {
    return this.requestValue;
  }

  run<T>(name: string, action: () => T | Promise<T>, options?: RunOptions): Promise<T>;
  run<T>(action: () => T | Promise<T>, options?: RunOptions): Promise<T>;
  run<T>(
    a: string | (() => T | Promise<T>),
    b?: (() => T | Promise<T>) | RunOptions,
    c?: RunOptions,
  ): Promise<T> {
    const [name, action, options] =
      typeof a === 'string' ? [a, b as () => T | Promise<T>, c] : ['', a, b as RunOptions | undefined];
    if (typeof action !== 'function') return Promise.reject(new TypeError('ctx.run needs a function'));
    return this.runStep(name, action, options);
  }

  private async runStep<T>(name: string, action: () => T | Promise<T>, options: RunOptions | undefined): Promise<T> {
    const r = this.runner;
    if (r.isEnded) return never();
    const { index, recorded } = r.reserve('run', name);
    if (recorded?.k === 'run') {
      if (recorded.e) throw deserializeTerminalError(recorded.e);
      return recorded.v as T;
    }
    r.beginStep();
    let outcome: { ok: true; v: T } | { ok: false; e: TerminalError };
    try {
      outcome = { ok: true, v: roundTrip(await this.execute(action, options)) };
    } catch (e) {
      if (!isTerminalError(e)) {
        // No result is recorded: the attempt fails and the step runs again on retry.
        r.endStep();
        r.fail(e);
        return never();
      }
      outcome = { ok: false, e };
    }
    r.endStep();
    if (r.isEnded) return never();
    r.fill(index, outcome.ok ? { k: 'run', n: name, v: outcome.v } : { k: 'run', n: name, e: serializeError(outcome.e) });
    await r.flushThrough(index);
    if (!outcome.ok) throw outcome.e;
    return outcome.v;
  }

  private async execute<T>(action: () => T | Promise<T>, options: RunOptions | undefined): Promise<T> {
    if (!options || (options.maxRetryAttempts === undefined && options.maxRetryDuration === undefined)) {
      return await action();
    }
    const started = Date.now();
    const maxDuration = options.maxRetryDuration !== undefined ? durationMs(options.maxRetryDuration) : Infinity;
    const maxAttempts = options.maxRetryAttempts ?? Infinity;
    for (let attempt = 1; ; attempt++) {
      try {
        return await action();
      } catch (e) {
        if (isTerminalError(e)) throw e;
        const delay = runDelay(options, attempt - 1);
        if (attempt >= maxAttempts || Date.now() - started + delay > maxDuration) {
          throw new TerminalError(`ctx.run retries exhausted after ${attempt} attempts: ${ensureError(e).message}`);
        }
        await new Promise((res) => setTimeout(res, delay));
        if (this.runner.isEnded) return never();
      }
    }
  }

  async sleep(duration: Duration, name?: string): Promise<void> {
    const r = this.runner;
    if (r.isEnded) return never();
    const ms = durationMs(duration);
    const { index, recorded } = r.reserve('sleep', name);
    if (!recorded) {
      r.fill(index, name === undefined ? { k: 'sleep', ms } : { k: 'sleep', n: name, ms });
      await r.flushThrough(index);
    }
    if (r.isEnded) return never();
    await r.waitUntil(r.dueOf(index));
  }

  get<T = unknown>(name: string): Promise<T | null> {
    const r = this.runner;
    if (r.isEnded) return never();
    checkStateName(name);
    const { index, recorded } = r.reserve('get', name);
    if (recorded?.k === 'get') return Promise.resolve(recorded.v as T | null);
    const raw = this.state.get(name);
    const v = raw === undefined ? null : (JSON.parse(raw) as T);
    r.fill(index, { k: 'get', n: name, v });
    return Promise.resolve(v);
  }

  stateKeys(): Promise<string[]> {
    const r = this.runner;
    if (r.isEnded) return never();
    const { index, recorded } = r.reserve('keys', undefined);
    if (recorded?.k === 'keys') return Promise.resolve(recorded.v);
    const keys = [...this.state.keys()].sort();
    r.fill(index, { k: 'keys', v: keys });
    return Promise.resolve(keys);
  }

  set<T>(name: string, value: T): void {
    this.checkWritable('set');
    checkStateName(name);
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('set', name);
    if (recorded) return;
    const json = JSON.stringify(value === undefined ? null : value);
    this.state.set(name, json);
    this.runner.fill(index, { k: 'set', n: name, v: JSON.parse(json) as unknown });
  }

  clear(name: string): void {
    this.checkWritable('clear');
    checkStateName(name);
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('clear', name);
    if (recorded) return;
    this.state.delete(name);
    this.runner.fill(index, { k: 'clear', n: name });
  }

  clearAll(): void {
    this.checkWritable('clearAll');
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('clearAll', undefined);
    if (recorded) return;
    this.state.clear();
    this.runner.fill(index, { k: 'clearAll' });
  }

  private checkWritable(op: string): void {
    if (!this.writable) {
      throw new DurableError(`ctx.${op}() is not allowed in a shared handler: its state is read-only`, ErrorCode.STATE_READ_ONLY);
    }
  }
}

function checkStateName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('state key must be a non-empty string');
}

function quietConsole(base: Console, replaying: () => boolean, prefix: string): Console {
  const wrap =
    (fn: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      if (!replaying()) fn.call(base, prefix, ...args);
    };
  return {
    ...base,
    log: wrap(base.log),
    info: wrap(base.info),
    warn: wrap(base.warn),
    error: wrap(base.error),
    debug: wrap(base.debug),
    trace: wrap(base.trace),
  };
}
