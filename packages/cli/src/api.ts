/**
 * The admin API as the CLI calls it (docs/ADMIN-API.md): one request, its JSON answer, and the
 * server's refusals turned into exit codes (404 → 3, anything else → 1).
 */
import { CliError, ExitCode } from './exit.js';

/** Where the admin API is and how to authenticate. */
export interface ApiConfig {
  /** Base URL, e.g. `http://127.0.0.1:9070`. */
  url: string;
  /** Bearer token, when the server wants one. */
  token?: string | undefined;
  /** Time a request may take (ms); default 30 s. */
  timeoutMs?: number;
}

/** A refusal of the admin API: its HTTP status, machine-readable code and message. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(status === 404 ? ExitCode.NOT_FOUND : ExitCode.FAILURE, message);
    this.status = status;
    this.code = code;
  }
  override get name(): string {
    return 'ApiError';
  }
}

type Query = Record<string, string | number | boolean | undefined>;

/** A client of the admin API. */
export class AdminApi {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(config: ApiConfig) {
    this.url = config.url.replace(/\/+$/, '');
    this.token = config.token;
    this.timeoutMs = config.timeoutMs ?? 30_000;
  }

  /** `GET path?query`, the JSON answer. */
  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query);
  }

  /** A request with an optional JSON body, the JSON answer. */
  async request<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
    const target = new URL(this.url + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) target.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(target, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const c = (e as { cause?: { code?: string; message?: string } }).cause;
      const cause = c?.code ?? c?.message ?? (e as Error).message;
      throw new CliError(
        ExitCode.FAILURE,
        `cannot reach the admin API at ${this.url} (${cause}); is the server running? (set LATCHKEY_ADMIN_URL or --admin-url)`,
        { cause: e },
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(
        ExitCode.FAILURE,
        `the admin API answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
      );
    }
    if (!res.ok) throw refusal(res.status, parsed, method, path);
    return parsed as T;
  }
}

function refusal(status: number, body: unknown, method: string, path: string): ApiError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code =
    typeof b['errorCode'] === 'string'
      ? b['errorCode']
      : typeof b['code'] === 'string'
        ? b['code']
        : `HTTP_${status}`;
  let message =
    typeof b['message'] === 'string' ? b['message'] : `${method} ${path}: HTTP ${status}`;
  if (status === 401) message += ' (set LATCHKEY_ADMIN_TOKEN or --token)';
  return new ApiError(status, code, message);
}

/** A path segment, percent-encoded (ids, service names and keys may hold any character). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}
