import { context } from '@opentelemetry/api';
import { HandlerContext, type TargetResolver } from '../context/context.js';
import type { ServiceKind } from '../define/definitions.js';
import { durationMs } from '../define/duration.js';
import { SerdeValidationError, decodeStored, encodeStored } from '../define/serde.js';
import {
  ErrorCode,
  TerminalError,
  ensureError,
  isPauseError,
  isRetryableError,
  isTerminalError,
  serializeError,
} from '../errors.js';
import { stateOpsOf } from '../journal/entry.js';
import { boundedError, failureDetail } from '../store/detail.js';
import type { Metrics } from '../telemetry/metrics.js';
import { observeAttempt } from '../telemetry/observed-attempt.js';
import type { AttemptTrace, Tracing } from '../telemetry/tracing.js';
import { stepOfFailure } from './failure.js';
import type { Attempt, Executor, Outcome } from '../store.js';
import { JournalRunner } from './journal-runner.js';
import type { Registry } from './registry.js';
import { DEFAULT_RETRY, nextRetry } from './retry.js';

/** Options of the executor that runs handler attempts. */
export interface ExecutorOptions {
  /** Overrides every handler's inactivity timeout (ms); 0 = always suspend: while waiting and after every committed step. */
  inactivityTimeoutMs?: number;
  /** Suspend after every committed step; default: when `inactivityTimeoutMs` is 0. */
  suspendAfterSteps?: boolean;
  /** Where handler consoles and runtime warnings go. */
  logger?: Console;
  /** The tracer of attempts (none: attempts are not traced). */
  tracing?: Tracing | undefined;
  /** Where attempts are counted and timed (none: they are not). */
  metrics?: Metrics | undefined;
}

const DEFAULT_INACTIVITY_MS = 60_000;

function isFenced(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { kind?: unknown }).kind === ErrorCode.FENCED;
}

/** The console methods a {@link HeldConsole} holds. */
const HELD = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;

/**
 * A console whose lines are kept until `release()` writes them to `base` (else they are dropped).
 * It is made on first use: most handlers write nothing.
 */
class HeldConsole {
  private readonly base: Console;
  private lines: [(typeof HELD)[number], unknown[]][] | undefined;
  private held: Console | undefined;

  constructor(base: Console) {
    this.base = base;
  }

  readonly console = (): Console => {
    if (this.held) return this.held;
    const held = Object.create(this.base) as Console;
    const lines: [(typeof HELD)[number], unknown[]][] = (this.lines = []);
    for (const m of HELD) held[m] = (...args: unknown[]): void => void lines.push([m, args]);
    return (this.held = held);
  };

  release(): void {
    const lines = this.lines;
    if (!lines) return;
    for (const [m, args] of lines) this.base[m](...args);
    lines.length = 0;
  }
}

/**
 * Builds the {@link Executor} that runs one attempt of a handler: replays the
 * journal, runs new steps, and ends the attempt by completing, suspending,
 * retrying or pausing it.
 */
export function createExecutor(registry: Registry, options: ExecutorOptions = {}): Executor {
  const logger = options.logger ?? console;
  const active = new Set<JournalRunner>();
  const resolveTarget: TargetResolver = (service, handler, kind) => {
    const spec = registry.handler(service, handler);
    if (spec)
      return { mode: spec.mode, options: spec.options, input: spec.input, output: spec.output };
    const def = registry.service(service);
    const k = def?.kind ?? kind;
    const mode =
      k === 'service'
        ? 'service'
        : k === 'object'
          ? 'exclusive'
          : handler === 'run'
            ? 'workflow'
            : 'shared';
    return { mode, options: def?.options ?? {} };
  };
  const kindOf = (service: string): ServiceKind | undefined => registry.service(service)?.kind;
  const { tracing, metrics } = options;
  const run = async (attempt: Attempt): Promise<void> => {
    const observed = observeAttempt(attempt, tracing, metrics);
    if (!observed) return runAttempt(attempt, undefined);
    try {
      await runAttempt(observed.attempt, observed.trace);
    } finally {
      observed.end();
    }
  };
  const runAttempt = async (attempt: Attempt, trace: AttemptTrace | undefined): Promise<void> => {
    const inv = attempt.invocation;
    // An eager attempt's console lines are written only once it is committed (see Attempt.eager).
    const held = attempt.eager === true ? new HeldConsole(logger) : undefined;
    const log = held?.console ?? logger;
    const warn = (line: string): void => (held ? held.console() : logger).warn(line);
    const spec = registry.handler(inv.target.service, inv.target.handler);
    if (!spec) {
      const err = new TerminalError(
        `no handler ${inv.target.service}/${inv.target.handler} is registered`,
        { errorCode: 404 },
      );
      await attempt.complete(inv.journal.length, [], [], [], {
        ok: false,
        error: serializeError(err),
      });
      return;
    }
    const maxAttempts = spec.options.retryPolicy?.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
    if (inv.attempt > maxAttempts) {
      // Earlier attempts were lost with their workers (crash loops count too).
      const failure = {
        name: 'WorkerLost',
        code: ErrorCode.WORKER_LOST,
        message: `${inv.attempt - 1} attempts were lost with their workers`,
      };
      if (spec.options.retryPolicy?.onMaxAttempts === 'kill') {
        await attempt.complete(inv.journal.length, [], [], [], {
          ok: false,
          error: { ...failure, status: 500 },
        });
      } else {
        // Its detail replaces the last failure's (no step, no stack: nobody saw those attempts fail).
        await attempt.pause(failure, { attempt: inv.attempt - 1 });
      }
      return;
    }
    const inactivityMs =
      options.inactivityTimeoutMs ??
      (spec.options.inactivityTimeout !== undefined
        ? durationMs(spec.options.inactivityTimeout)
        : DEFAULT_INACTIVITY_MS);
    // The executor-wide timeout 0 ("always suspend", a test mode) also suspends after every step.
    const runner = new JournalRunner(
      attempt,
      hurried ? 0 : inactivityMs,
      options.suspendAfterSteps ?? options.inactivityTimeoutMs === 0,
    );
    runner.trace = trace;
    if (!held) {
      // An eager attempt ends within its event-loop turn: there is nothing for hurry() to shorten.
      active.add(runner);
      void runner.interrupted.then(() => active.delete(runner));
    }
    const writable = spec.mode === 'exclusive' || spec.mode === 'workflow';
    const ctx = new HandlerContext(runner, inv, writable, log, {
      childId: (index, target, idem) => attempt.childId(index, target, idem),
      resolveTarget,
      kindOf,
      serviceKind: spec.serviceKind,
      inputSerde: spec.input,
      needState: attempt.needState?.bind(attempt),
    });

    const body = async (): Promise<string | undefined> => {
      let input: unknown;
      try {
        input = decodeStored(spec.input, inv.input);
      } catch (e) {
        const msg = e instanceof SerdeValidationError ? e.message : ensureError(e).message;
        throw new TerminalError(msg, { errorCode: 400 });
      }
      // The result as it is kept: JSON text, or the output serde's bytes in base64.
      return encodeStored(spec.output, await spec.fn(ctx, input));
    };
    // A traced handler runs in its attempt span's context: its own spans nest under the attempt.
    const handlerDone = (trace ? context.with(trace.context, body) : body()).then(
      (value) => ({ kind: 'returned' as const, value }),
      (error: unknown) => ({ kind: 'threw' as const, error }),
    );

    const first = await Promise.race([handlerDone, runner.interrupted]);
    try {
      if (first.kind === 'suspended' || first.kind === 'fenced') return;
      if (first.kind === 'failed') {
        await failAttempt(first.error);
        return;
      }
      if (first.kind === 'threw' && !isTerminalError(first.error)) {
        runner.fail(first.error);
        await failAttempt(ensureError(first.error));
        return;
      }
      const rest = await runner.finish();
      if (!rest) {
        // The attempt was interrupted while the handler returned; honour the interrupt.
        const i = await runner.interrupted;
        if (i.kind === 'failed') await failAttempt(i.error);
        return;
      }
      const outcome: Outcome =
        first.kind === 'returned'
          ? { ok: true, value: first.value }
          : { ok: false, error: serializeError(first.error) };
      await attempt.complete(
        rest.from,
        rest.entries,
        stateOpsOf(rest.entries),
        rest.effects,
        outcome,
      );
      held?.release();
    } catch (e) {
      if (isFenced(e)) return;
      throw e;
    } finally {
      active.delete(runner);
    }

    async function failAttempt(error: Error): Promise<void> {
      if (isFenced(error) || attempt.signal.aborted) return;
      const failure = boundedError(serializeError(error));
      // Where it failed (the step, also when nothing was committed), kept with the failure.
      const detail = failureDetail(inv.attempt, error, stepOfFailure(error));
      if (isPauseError(error)) {
        warn(`[${inv.id}] paused by the handler: ${error.message}`);
        await attempt.pause(failure, detail);
        return;
      }
      const decision = nextRetry(
        spec!.options.retryPolicy,
        inv.attempt,
        isRetryableError(error) ? error.retryAfter : undefined,
      );
      if (decision.kind === 'retry') {
        warn(
          `[${inv.target.service}/${inv.target.handler}][${inv.id}] attempt ${inv.attempt} failed, retrying in ${decision.delayMs} ms: ${error.message}`,
        );
        await attempt.retry(failure, decision.delayMs, detail);
      } else if (decision.kind === 'pause') {
        warn(
          `[${inv.id}] retries exhausted after ${inv.attempt} attempts; paused: ${error.message}`,
        );
        await attempt.pause(failure, detail);
      } else {
        const rest = await runner.drain();
        await attempt.complete(rest.from, [], [], [], {
          ok: false,
          error: { ...failure, status: failure.status ?? 500 },
        });
      }
    }
  };
  let hurried = false;
  return {
    run,
    hurry(): void {
      hurried = true;
      for (const r of active) r.hurry();
    },
  };
}
