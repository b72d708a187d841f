/**
 * Reading request bodies within bounds: a size limit per body, a time limit per body, and a cap on
 * the bytes held, across all requests of a server, for bodies that have not finished arriving.
 */
import type { IncomingMessage } from 'node:http';
import { IngressError } from '../errors.js';

/** Options of body reading (part of the HTTP ingress's and the admin API's options). */
export interface BodyLimits {
  /** Largest request body (bytes); larger ones are refused with 413 `BODY_TOO_LARGE`. */
  maxBodyBytes: number;
  /** Time a body may take to arrive (ms), from when the ingress starts reading it; later: 408 `BODY_TIMEOUT`. */
  bodyTimeoutMs: number;
  /**
   * Bytes all unfinished bodies together may hold; a chunk beyond it refuses its request with 503
   * `BODY_BUFFER_FULL` (Retry-After), so many slow uploads cannot fill the process's memory.
   */
  maxBufferedBodyBytes: number;
}

/** The bytes held by unfinished bodies of one server. */
export class BodyBudget {
  held = 0;
  readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
}

/**
 * Reads a request body within `limits`: refused at once when its Content-Length is too large, else
 * as soon as the bytes read pass a limit or the time runs out. The caller answers the error and
 * discards the rest of the body (see `discardRest`).
 */
export function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  budget: BodyBudget,
): Promise<Buffer> {
  const max = limits.maxBodyBytes;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    return Promise.reject(
      new IngressError(
        413,
        'BODY_TOO_LARGE',
        `request body of ${declared} bytes exceeds the limit of ${max}`,
      ),
    );
  }
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (): void => {
      clearTimeout(timer);
      budget.held -= size;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const refuse = (e: IngressError): void => {
      finish();
      req.pause();
      reject(e);
    };
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > max) {
        refuse(
          new IngressError(413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${max} bytes`),
        );
        return;
      }
      if (budget.held + chunk.length > budget.max) {
        refuse(
          new IngressError(
            503,
            'BODY_BUFFER_FULL',
            'too many request bodies are arriving at once; retry later',
            { retryAfter: 1 },
          ),
        );
        return;
      }
      size += chunk.length;
      budget.held += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      finish();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (e: Error): void => {
      finish();
      reject(e);
    };
    const onAborted = (): void =>
      onError(Object.assign(new Error('client went away'), { name: 'AbortError' }));
    const timer = setTimeout(
      () =>
        refuse(
          new IngressError(
            408,
            'BODY_TIMEOUT',
            `the request body did not arrive within ${limits.bodyTimeoutMs} ms`,
          ),
        ),
      limits.bodyTimeoutMs,
    );
    timer.unref();
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onAborted);
  });
}

/** How long the rest of a refused request body is read and discarded before its connection is dropped (ms). */
const LINGER_MS = 2000;

/**
 * Reads and discards the rest of a refused request body (as Node does for any body left unread
 * once the answer is sent), and drops the connection when the client is still sending after
 * {@link LINGER_MS}. Closing at once would make the kernel reset a connection with unread bytes,
 * and the client would lose the answer it was just sent. A client that sends nothing more (a body
 * that timed out) is dropped at once after the answer.
 */
export function discardRest(req: IncomingMessage, dropNow = false): void {
  if (dropNow) {
    req.socket.end();
    setTimeout(() => req.destroy(), LINGER_MS).unref();
    return;
  }
  const timer = setTimeout(() => req.destroy(), LINGER_MS);
  timer.unref();
  const stop = (): void => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}
