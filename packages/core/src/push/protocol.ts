/**
 * The push protocol (docs/PROTOCOL.md), version 1: how the engine runs a handler on a deployment
 * that has no store of its own (a serverless function, any HTTP endpoint). JSON over HTTP, one
 * request per step: the engine sends the invocation with its journal, completions and the key's
 * state; the deployment replays, runs until the handler needs something durable, and answers with
 * the new entries and what comes next. The engine commits them through the store's fenced writes.
 */
import { z } from 'zod';
import type { SerializedError } from '../errors.js';
import type { Completion, Effect, Entry, NewEntry } from '../journal/entry.js';
import type { SuspendOn } from '../journal/replay-types.js';
import type { FailureDetail } from '../store/detail.js';
import type { Outcome, Target, TargetMode } from '../store/invocation.js';
import type { ServiceInfo } from '../ingress/service-info.js';

/** The protocol version this code speaks (the only one so far). */
export const PUSH_PROTOCOL_VERSION = 1;
/** Content type of invocation requests and their answers. */
export const INVOKE_CONTENT_TYPE = 'application/vnd.latchkey.invoke.v1+json';
/** Content type of the discovery answer. */
export const MANIFEST_CONTENT_TYPE = 'application/vnd.latchkey.manifest.v1+json';
/** Header carrying the engine's Ed25519 signature of a request (see `signing.ts`). */
export const SIGNATURE_HEADER = 'x-latchkey-signature';

/** What `GET /discover` answers: the deployment's services as the admin API describes them. */
export interface PushManifest {
  protocol: 'latchkey-push';
  minVersion: number;
  maxVersion: number;
  /** The deployment reaches the engine's store: it takes attempts over and commits them itself. */
  direct?: boolean;
  services: ServiceInfo[];
}

/** One attempt's step, from the engine to the deployment (`POST /invoke/{service}/{handler}`). */
export interface PushRequest {
  v: 1;
  /** Echoed in the answer: ties an answer to the request it answers. */
  fence: string;
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * The attempt's fencing epoch in the engine's store: every write of an attempt with an older
   * one is refused (informative here; direct mode's `handle` carries it too).
   */
  epoch?: string;
  target: Target;
  mode: TargetMode;
  /** The input as stored: JSON text, or the input serde's bytes in base64. */
  input: string;
  headers: Record<string, string>;
  /** The committed journal. */
  journal: Entry[];
  /** Completions delivered to completable entries: `[index, completion]`. */
  completions: [number, Completion][];
  /** The key's state (JSON-encoded values): `[name, value]`; empty for a service. */
  state: [string, string][];
  /**
   * Names of the key's state values left out of `state` (over the deployment's eager-state
   * size): reading one answers `state` with its name, and the engine sends it next time.
   */
  lazyState?: string[];
  /** The store's clock (ms) when the request was made. */
  now: number;
  /** The invocation's secret random seed (`ctx.rand`, awakeable and child ids). */
  seed: string;
  cancelRequested: boolean;
  /** The store's partition count: child invocation ids name their partition. */
  partitions: number;
  /** W3C trace context of the invocation (`traceparent;tracestate`). */
  trace?: string;
  /**
   * Direct mode (a deployment whose manifest says `direct`): the attempt's handle in the store
   * (`Attempt.handle`). The deployment takes the attempt over and runs it to its end through the
   * store's fenced writes, then answers `done`.
   */
  handle?: string;
}

interface Batch {
  v: 1;
  fence: string;
  /** Journal index of the first new entry (the request's journal length). */
  from: number;
  entries: NewEntry[];
  effects: Effect[];
}

/** The deployment's answer: new entries, then what the engine does with them. */
export type PushResponse = Batch &
  (
    | { type: 'commit' }
    | { type: 'suspend'; on: SuspendOn }
    | { type: 'complete'; outcome: Outcome }
    | { type: 'retry'; failure: SerializedError; delayMs: number; detail?: FailureDetail }
    | { type: 'pause'; failure: SerializedError; detail?: FailureDetail }
    | { type: 'done' }
    | { type: 'state'; names: string[] }
  );

const ENTRY_KINDS = [
  'run',
  'sleep',
  'get',
  'set',
  'clear',
  'clearAll',
  'keys',
  'call',
  'send',
  'awk',
  'awkResolve',
  'pget',
  'ppeek',
  'presolve',
  'attach',
  'cancelInv',
  'comb',
  'sig',
  'sigResolve',
  'signal',
] as const;
const EFFECT_KINDS = [
  'accept',
  'awakeable',
  'cancel',
  'attach',
  'pget',
  'ppeek',
  'sget',
  'signal',
  'presolve',
] as const;

const error = z.looseObject({ message: z.string(), name: z.string().optional() });
const target = z.object({
  service: z.string(),
  handler: z.string(),
  key: z.string().optional(),
});
const completion = z.union([
  z.object({ ok: z.literal(true), v: z.string().optional() }),
  z.object({ ok: z.literal(false), e: error }),
]);
const detail = z.looseObject({ attempt: z.number().int() }).optional();
const batch = {
  v: z.literal(1),
  fence: z.string(),
  from: z.number().int().nonnegative(),
  entries: z.array(z.looseObject({ k: z.enum(ENTRY_KINDS) })),
  effects: z.array(z.looseObject({ t: z.enum(EFFECT_KINDS) })),
};

/** The shape of an answer (entries and effects are checked by kind; the store checks the rest). */
export const pushResponseSchema = z.discriminatedUnion('type', [
  z.object({ ...batch, type: z.literal('commit') }),
  z.object({
    ...batch,
    type: z.literal('suspend'),
    on: z.object({
      wakeAt: z.number().nullable(),
      awaiting: z.array(z.number().int().nonnegative()),
    }),
  }),
  z.object({
    ...batch,
    type: z.literal('complete'),
    outcome: z.union([
      z.object({ ok: z.literal(true), value: z.string().optional() }),
      z.object({ ok: z.literal(false), error }),
    ]),
  }),
  z.object({
    ...batch,
    type: z.literal('retry'),
    failure: error,
    delayMs: z.number().nonnegative(),
    detail,
  }),
  z.object({ ...batch, type: z.literal('pause'), failure: error, detail }),
  z.object({ ...batch, type: z.literal('done') }),
  z.object({ ...batch, type: z.literal('state'), names: z.array(z.string()).min(1).max(1000) }),
]);

/** The shape of a request, as a deployment checks it. */
export const pushRequestSchema = z.object({
  v: z.literal(1),
  fence: z.string(),
  id: z.string().min(1),
  attempt: z.number().int().positive(),
  epoch: z.string().max(64).optional(),
  target,
  mode: z.enum(['service', 'exclusive', 'shared', 'workflow']),
  input: z.string(),
  headers: z.record(z.string(), z.string()),
  journal: z.array(z.looseObject({ k: z.enum(ENTRY_KINDS) })),
  completions: z.array(z.tuple([z.number().int().nonnegative(), completion])),
  state: z.array(z.tuple([z.string(), z.string()])),
  lazyState: z.array(z.string()).optional(),
  now: z.number(),
  seed: z.string().min(1),
  cancelRequested: z.boolean(),
  partitions: z.number().int().positive(),
  trace: z.string().optional(),
  handle: z
    .string()
    .max(64 * 1024)
    .optional(),
});

/** The shape of a manifest, as the engine checks it at discovery. */
export const manifestSchema = z.object({
  protocol: z.literal('latchkey-push'),
  minVersion: z.number().int(),
  maxVersion: z.number().int(),
  direct: z.boolean().optional(),
  services: z.array(
    z.looseObject({
      name: z.string(),
      kind: z.enum(['service', 'object', 'workflow']),
      handlers: z.array(
        z.looseObject({
          name: z.string(),
          kind: z.enum(['exclusive', 'shared', 'workflow']).nullable(),
          private: z.boolean(),
          options: z.looseObject({}),
          input: z.unknown(),
          output: z.unknown(),
        }),
      ),
    }),
  ),
});
