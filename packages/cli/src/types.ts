/**
 * The admin API's answers as the CLI reads them (docs/ADMIN-API.md). Every field the contract
 * marks "when it applies" is optional, and so are the v2 fields, so that the CLI also reads an
 * older server's answers (`journal` and `lastFailure` only).
 */
/** A JSON value cut for display: whole, or its first bytes with `truncated` and the full size. */
export interface Preview {
  json: string;
  truncated?: boolean;
  bytes?: number;
}

/** An error as the admin API shows it. */
export interface ApiErrorInfo {
  name?: string;
  message?: string;
  stack?: string;
  code?: string | number;
  status?: number;
}

/** Who and what an invocation targets. */
export interface TargetInfo {
  service: string;
  handler: string;
  key?: string;
}

/** One row of `GET /invocations`. */
export interface InvocationSummary {
  id: string;
  target: TargetInfo;
  mode?: string;
  status: string;
  attempts?: number;
  createdAt?: number;
  modifiedAt?: number;
  idempotencyKey?: string;
  nextRetryAt?: number;
  lastFailure?: ApiErrorInfo;
}

/** `GET /invocations`. */
export interface InvocationList {
  invocations: InvocationSummary[];
  nextCursor?: string;
}

/** One journal entry of an invocation's timeline. */
export interface TimelineItem {
  index: number;
  kind: string;
  name?: string;
  recordedAt?: number;
  durationMs?: number;
  value?: Preview;
  failure?: ApiErrorInfo;
  childId?: string;
  due?: number;
}

/** Where and how the last failed attempt failed. */
export interface FailureInfo {
  attempt?: number;
  at?: number;
  step?: { index: number; kind?: string; name?: string };
  error?: ApiErrorInfo;
  nextRetryAt?: number;
}

/** `GET /invocations/{id}`. */
export interface InvocationDetail extends InvocationSummary {
  firstStartedAt?: number;
  lastStartedAt?: number;
  completedAt?: number;
  invokedBy?: { id: string; index?: number };
  /** The W3C trace id of its spans, when it was accepted under a trace context. */
  traceId?: string;
  children?: Array<{ id: string; index?: number; kind?: string; target?: TargetInfo }>;
  workflowKey?: string;
  input?: Preview;
  outcome?: { ok: boolean; value?: Preview | string; error?: ApiErrorInfo };
  failure?: FailureInfo;
  timeline?: TimelineItem[];
  /** An older server's journal (before the timeline): raw entries `{ k, n, v, e, id, due }`. */
  journal?: Array<Record<string, unknown>>;
}

/** `GET /invocations/counts`. */
export interface InvocationCounts {
  total: number;
  byStatus: Record<string, number>;
  byService?: Record<string, number>;
}

/** `POST /invocations/bulk/{op}`. */
export interface BulkResult {
  dryRun: boolean;
  matched: number;
  applied: string[];
  failed: Array<{ id: string; code?: string; message?: string }>;
}

/** `GET /services/{service}/state/{key}`. */
export interface StateAnswer {
  service: string;
  key: string;
  state: Record<string, unknown>;
}
