/**
 * Runs attempts of handlers that live on push deployments: one request per step, each answer
 * committed through the attempt (the store's fenced writes) before the next request is sent, so
 * the deployment's handler goes on only from a durable journal. An attempt of any other service
 * goes to the local executor.
 */
import { ErrorCode, ensureError, serializeError, type SerializedError } from '../errors.js';
import {
  stateOpsOf,
  type Completion,
  type Entry,
  type NewEntry,
  type StateOp,
} from '../journal/entry.js';
import { nextRetry } from '../runtime/retry.js';
import type { Registry } from '../runtime/registry.js';
import { boundedError } from '../store/detail.js';
import type { Attempt, Executor } from '../store/attempt.js';
import type { DeploymentClient } from './deployments.js';
import type { PushRequest } from './protocol.js';
import { answerProblem } from './answer-check.js';
import type { Metrics } from '../telemetry/metrics.js';
import { observeAttempt } from '../telemetry/observed-attempt.js';
import type { Tracing } from '../telemetry/tracing.js';

/** Where each remote service's invocations go. */
export interface PushRoutes {
  /** The deployment that serves `service`, if one does. */
  deploymentOf(service: string): DeploymentClient | undefined;
}

function isFenced(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { kind?: unknown }).kind === ErrorCode.FENCED;
}

/** Default bytes of a key's state sent with each push request (`eagerStateBytes`). */
export const DEFAULT_EAGER_STATE_BYTES = 1024 * 1024;

/**
 * The state a request carries: every value while their names and values fit in `limit` bytes (the
 * `wanted` ones whatever their size), the others by name (`lazyState`).
 */
function eagerState(
  state: Map<string, string>,
  limit: number,
  wanted: Set<string>,
): { state: [string, string][]; lazyState?: string[] } {
  let bytes = 0;
  for (const [n, v] of state) bytes += n.length + v.length;
  if (bytes <= limit) return { state: [...state] };
  const sent: [string, string][] = [];
  const lazy: string[] = [];
  let used = 0;
  for (const [n, v] of state) {
    const size = n.length + v.length;
    if (wanted.has(n) || used + size <= limit) {
      sent.push([n, v]);
      if (!wanted.has(n)) used += size;
    } else lazy.push(n);
  }
  return lazy.length > 0 ? { state: sent, lazyState: lazy } : { state: sent };
}

/** Applies committed entries to the engine's copy of the journal and state. */
function applyCommitted(
  journal: Entry[],
  state: Map<string, string>,
  entries: NewEntry[],
  ops: StateOp[],
  now: number,
): void {
  for (const e of entries) {
    journal.push(
      e.k === 'sleep'
        ? {
            ...(e.n !== undefined ? { n: e.n } : {}),
            k: 'sleep',
            due: now + Math.max(0, Math.floor(e.ms)),
          }
        : e,
    );
  }
  for (const op of ops) {
    if (op.op === 'set') state.set(op.n, op.v);
    else if (op.op === 'clear') state.delete(op.n);
    else state.clear();
  }
}

/**
 * An executor that sends the attempts of deployment services to their deployment and every
 * other attempt to `local`.
 */
export function pushExecutor(
  local: Executor,
  registry: Registry,
  routes: PushRoutes,
  telemetry: { tracing?: Tracing | undefined; metrics?: Metrics | undefined } = {},
): Executor {
  const runRemote = async (client: DeploymentClient, attempt: Attempt): Promise<void> => {
    const inv = attempt.invocation;
    const journal = inv.journal.slice();
    const state = new Map(inv.state);
    const completions = new Map<number, Completion>(inv.completions);
    let now = inv.now;
    let cancelRequested = inv.cancelRequested;
    const direct = client.info.direct === true && attempt.handle !== undefined;
    // State values sent whatever their size: those the handler asked for.
    const wanted = new Set<string>();
    const limit = direct ? Infinity : (client.info.eagerStateBytes ?? DEFAULT_EAGER_STATE_BYTES);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    attempt.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (let round = 0; ; round++) {
        if (attempt.signal.aborted) return;
        const request: PushRequest = {
          v: 1,
          fence: `${attempt.epoch ?? inv.attempt}.${round}.${Math.random().toString(36).slice(2, 10)}`,
          id: inv.id,
          attempt: inv.attempt,
          ...(attempt.epoch !== undefined ? { epoch: attempt.epoch } : {}),
          target: inv.target,
          mode: inv.mode,
          input: inv.input,
          headers: inv.headers,
          journal,
          completions: [...completions],
          ...eagerState(state, limit, wanted),
          now: Math.max(now, attempt.storeNow()),
          seed: inv.seed,
          cancelRequested,
          partitions: attempt.partitions ?? 1,
          ...(inv.trace !== undefined ? { trace: inv.trace } : {}),
          ...(direct ? { handle: attempt.handle } : {}),
        };
        let a;
        try {
          a = await client.invoke(request, ac.signal);
        } catch (e) {
          if (attempt.signal.aborted) return;
          await failed(attempt, ensureError(e), journal.length);
          return;
        }
        const problem = answerProblem(a, attempt, registry);
        if (problem) {
          const e = new Error(
            `deployment ${client.info.uri} answered what its handler cannot: ${problem}`,
          );
          await failed(attempt, e, journal.length);
          return;
        }
        const ops = stateOpsOf(a.entries);
        switch (a.type) {
          case 'commit': {
            const r = await attempt.commit(a.from, a.entries, ops, a.effects);
            applyCommitted(journal, state, a.entries, ops, r.now);
            for (const [i, c] of r.completions) completions.set(i, c);
            now = r.now;
            continue;
          }
          case 'suspend': {
            const r = await attempt.suspend(a.from, a.entries, ops, a.effects, a.on);
            if (r === 'suspended') return;
            applyCommitted(journal, state, a.entries, ops, r.now);
            for (const [i, c] of r.completions) completions.set(i, c);
            now = r.now;
            cancelRequested ||= r.cancelled;
            continue;
          }
          case 'complete':
            await attempt.complete(a.from, a.entries, ops, a.effects, a.outcome);
            return;
          case 'retry':
            await attempt.retry(boundedError(a.failure), a.delayMs, a.detail);
            return;
          case 'pause':
            await attempt.pause(boundedError(a.failure), a.detail);
            return;
          case 'done': {
            // Direct mode: the deployment ended the attempt through the store itself, so ending it
            // here too is fenced off (and ends nothing). Should it still be open (a deployment on
            // another Redis or prefix), this makes it a failed attempt, not a silent one.
            const e = new Error(
              `deployment ${client.info.uri} answered done, yet the attempt was still open: does it use this engine's Redis and prefix?`,
            );
            await failed(attempt, e, journal.length);
            return;
          }
          case 'state': {
            // Values it was sent without: send them along, then ask again (nothing to commit).
            const fresh = a.names.filter((n) => state.has(n) && !wanted.has(n));
            if (fresh.length === 0) {
              await failed(
                attempt,
                new Error('the deployment asked for state it was sent'),
                journal.length,
              );
              return;
            }
            for (const n of fresh) wanted.add(n);
            continue;
          }
        }
      }
    } catch (e) {
      if (isFenced(e)) return;
      throw e;
    } finally {
      attempt.signal.removeEventListener('abort', onAbort);
    }
  };

  const pushed = (client: DeploymentClient, attempt: Attempt): Promise<void> => {
    // An eager attempt may run nothing but state entries before it is accepted: a deployment's
    // handler could run a step. Declined (every write of an eager attempt declines it).
    if (attempt.eager) {
      const declined = {
        name: 'Declined',
        code: ErrorCode.FENCED,
        message: 'runs on a deployment',
      };
      return attempt.retry(declined, 0).catch(() => undefined);
    }
    // Traced and counted as a local attempt is (its span, its duration and outcome); not a direct
    // one, which the deployment runs and ends out of the engine's sight.
    const direct = client.info.direct === true && attempt.handle !== undefined;
    const observed = direct
      ? undefined
      : observeAttempt(attempt, telemetry.tracing, telemetry.metrics);
    if (!observed) return runRemote(client, attempt);
    return runRemote(client, observed.attempt).finally(() => observed.end());
  };

  /** A request that failed: retried by the handler's policy, as a handler's own failure is. */
  const failed = async (attempt: Attempt, error: Error, from: number): Promise<void> => {
    const inv = attempt.invocation;
    const spec = registry.handler(inv.target.service, inv.target.handler);
    const failure: SerializedError = boundedError(serializeError(error));
    const retryAfter = (error as { retryAfter?: number }).retryAfter;
    const decision = nextRetry(spec?.options.retryPolicy, inv.attempt, retryAfter);
    const detail = { attempt: inv.attempt };
    if (decision.kind === 'retry') await attempt.retry(failure, decision.delayMs, detail);
    else if (decision.kind === 'pause') await attempt.pause(failure, detail);
    else {
      await attempt.complete(from, [], [], [], {
        ok: false,
        error: { ...failure, status: failure.status ?? 500 },
      });
    }
  };

  return {
    run(attempt: Attempt): Promise<void> {
      const service = attempt.invocation.target.service;
      const client = routes.deploymentOf(service);
      if (client) return pushed(client, attempt);
      // A deployment registered by another process since this one last looked: read them first.
      const missing = registry.service(service) ? undefined : registry.ensure(service, true);
      if (!missing) return local.run(attempt);
      return missing.then(() => {
        const c = routes.deploymentOf(service);
        return c ? pushed(c, attempt) : local.run(attempt);
      });
    },
    hurry(): void {
      // A push attempt waits on nothing but its request; it ends with it.
      local.hurry();
    },
  };
}
