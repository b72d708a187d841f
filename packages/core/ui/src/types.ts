/**
 * The admin API's answers as the UI reads them (docs/ADMIN-API.md). Every field the UI does not
 * strictly need is optional: a server may be older or newer than the page.
 */
import type { Preview } from './format.js';

/** Statuses of an invocation, in the order the UI lists them. */
export const STATUSES = [
  'delayed',
  'queued',
  'ready',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
] as const;

/** An invocation's target. */
export interface Target {
  service: string;
  handler: string;
  key?: string;
}

/** A serialized error. */
export interface ErrorInfo {
  name?: string;
  message?: string;
  stack?: string;
  code?: number | string;
}

/** One row of `GET /invocations`. */
export interface InvocationSummary {
  id: string;
  target: Target;
  mode?: string;
  status: string;
  attempts?: number;
  createdAt?: number;
  modifiedAt?: number;
  idempotencyKey?: string;
  nextRetryAt?: number;
  lastFailure?: ErrorInfo;
}

/** `GET /invocations`. */
export interface InvocationPage {
  invocations: InvocationSummary[];
  nextCursor?: string;
}

/** `GET /invocations/counts`. */
export interface Counts {
  total?: number;
  byStatus?: Record<string, number>;
  byService?: Record<string, number>;
}

/** One item of an invocation's journal timeline. */
export interface TimelineItem {
  index: number;
  kind: string;
  name?: string;
  recordedAt?: number;
  durationMs?: number;
  value?: Preview;
  failure?: ErrorInfo;
  childId?: string;
  due?: number;
}

/** The last failed attempt of an invocation. */
export interface FailureInfo {
  attempt?: number;
  at?: number;
  step?: { index: number; kind: string; name?: string };
  error?: ErrorInfo;
  nextRetryAt?: number;
}

/** `GET /invocations/{id}`. */
export interface InvocationDetail extends InvocationSummary {
  firstStartedAt?: number;
  lastStartedAt?: number;
  completedAt?: number;
  invokedBy?: { id: string; index?: number };
  /** The W3C trace id of its spans, when it was traced. */
  traceId?: string;
  children?: Array<{ id: string; index?: number; kind?: string; target?: Target }>;
  workflowKey?: string;
  input?: Preview | string;
  outcome?: { ok: boolean; value?: Preview | string; error?: ErrorInfo };
  failure?: FailureInfo;
  timeline?: TimelineItem[];
  /** The raw journal of servers before the timeline (`{ k, n, … }` entries). */
  journal?: Array<Record<string, unknown>>;
}

/** One handler of `GET /services/{service}`. */
export interface HandlerInfo {
  name: string;
  kind?: string | null;
  description?: string;
  private?: boolean;
  options?: Record<string, unknown>;
  input?: unknown;
  output?: unknown;
}

/** `GET /services/{service}`. */
export interface ServiceInfo {
  name: string;
  /** `service`, `object` or `workflow`. */
  kind: string;
  description?: string;
  metadata?: Record<string, unknown>;
  handlers: HandlerInfo[];
}

/** One row of `GET /services/{service}/keys`. */
export interface KeyInfo {
  key: string;
  inbox?: number;
  holder?: string;
}

/** One durable promise of a workflow run. */
export interface PromiseInfo {
  name: string;
  state: string;
  value?: Preview;
  error?: ErrorInfo;
}
