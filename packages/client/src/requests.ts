/**
 * The client's open requests: what an operation needs from the connection ({@link Host}), the
 * timeout/abort bookkeeping every operation shares ({@link BaseOp}), and the requests answered by
 * one promise ({@link RequestOp}: call, send, submit, attach, output, awakeables, cancel).
 */
import type { ClientFrame, ServerFrame } from '@latchkey/core/protocol';
import { CallError } from './errors.js';
import type { RequestOptions, SendResult } from './types.js';
import { abortError, errorOf, protocolError, resultValue } from './wire.js';

/** What an operation needs from the client. */
export interface Host {
  readonly defaultTimeout: number | undefined;
  remove(id: string): void;
  /** Registers an op under `id` (ghost unsubscribers). */
  register(op: Op): void;
  write(f: ClientFrame): boolean;
  nextId(): string;
  isOpen(): boolean;
  /** Keeps the cancel token the server gave for an invocation this client started. */
  keepCancelToken(invocationId: string, token: unknown): void;
}

/** An open request, keyed by its frame id. */
export interface Op {
  readonly id: string;
  /** The frame to (re)send on an open socket; undefined when there is nothing to send. */
  frame(): ClientFrame | undefined;
  /** The frame from {@link Op.frame} was handed to the socket. */
  written?(): void;
  /** The socket dropped. */
  disconnected(): void;
  /** A frame with this op's id arrived. */
  receive(f: ServerFrame): void;
  /** Ends the op with an error. */
  fail(e: CallError): void;
}

/** The `code` of the `error` answering an `output` while the invocation runs (`NOT_READY_CODE`). */
const NOT_READY_CODE = 470;

/** Timeout, abort and bookkeeping shared by every operation. */
export abstract class BaseOp implements Op {
  protected finished = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private signal: AbortSignal | undefined;
  private onAbort: (() => void) | undefined;

  protected readonly host: Host;
  readonly id: string;

  constructor(host: Host, id: string) {
    this.host = host;
    this.id = id;
  }

  /** Starts the timeout and abort listener; false (and failed) when the signal is already aborted. */
  arm(opts: RequestOptions | undefined): boolean {
    const signal = opts?.signal;
    if (signal?.aborted) {
      this.fail(abortError(signal));
      return false;
    }
    const timeout = opts?.timeout ?? this.host.defaultTimeout;
    if (timeout !== undefined && Number.isFinite(timeout) && timeout >= 0) {
      this.timer = setTimeout(
        () => this.fail(new CallError(408, 'TIMEOUT', `no answer within ${timeout} ms`)),
        timeout,
      );
    }
    if (signal) {
      this.signal = signal;
      this.onAbort = () => this.fail(abortError(signal));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    return true;
  }

  /** Marks the op done and forgets it; false if it already was. */
  protected finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    this.host.remove(this.id);
    return true;
  }

  abstract frame(): ClientFrame | undefined;
  abstract disconnected(): void;
  abstract receive(f: ServerFrame): void;
  abstract fail(e: CallError): void;
}

export type RequestKind = 'call' | 'send' | 'submit' | 'attach' | 'output' | 'ok';

/** A request answered by one promise: call, send, submit, attach, output, awakeables, cancel. */
export class RequestOp<T> extends BaseOp {
  readonly promise: Promise<T>;
  private resolve!: (v: T) => void;
  private reject!: (e: CallError) => void;
  private invocationId: string | undefined;
  private sent = false;
  /** An ambiguous workflow `run` call re-sent as `submit`: attach once accepted. */
  private thenAttach = false;

  private readonly kind: RequestKind;
  private request: ClientFrame;
  private readonly workflowRun: boolean;

  constructor(
    host: Host,
    id: string,
    kind: RequestKind,
    request: ClientFrame,
    workflowRun: boolean,
  ) {
    super(host, id);
    this.kind = kind;
    this.request = request;
    this.workflowRun = workflowRun;
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  written(): void {
    this.sent = true;
  }

  frame(): ClientFrame {
    if (this.kind === 'call' && this.invocationId !== undefined) {
      return { id: this.id, type: 'attach', invocationId: this.invocationId };
    }
    return this.request;
  }

  disconnected(): void {
    if (this.finished || !this.sent || this.invocationId !== undefined) return;
    const r = this.request;
    if ((r.type === 'call' || r.type === 'send') && r.idempotencyKey === undefined) {
      // Sent, not accepted, no idempotency key: the server may or may not have started it.
      if (this.workflowRun) {
        if (r.type === 'call') {
          const input = r.input;
          // A workflow's `run` names its workflow and key (`service`, `key`).
          this.request = {
            id: this.id,
            type: 'submit',
            workflow: r.service,
            key: r.key!,
            ...(input !== undefined ? { input } : {}),
          };
          this.thenAttach = true;
        }
        // A workflow `send` is deduped by the workflow id: re-send it as is.
        return;
      }
      this.fail(
        new CallError(
          503,
          'AMBIGUOUS',
          'the connection dropped before the server accepted the request; it may or may not have ' +
            'started (use an idempotency key to retry safely)',
        ),
      );
    }
  }

  receive(f: ServerFrame): void {
    if (this.finished) return;
    switch (f.type) {
      case 'accepted': {
        const invocationId = String(f.invocationId);
        const token = f.cancelToken;
        this.host.keepCancelToken(invocationId, token);
        if (this.kind === 'send' || this.kind === 'submit') {
          const result: SendResult = {
            invocationId,
            status: f.status === 'PreviouslyAccepted' ? 'PreviouslyAccepted' : 'Accepted',
          };
          if (typeof token === 'string') result.cancelToken = token;
          if (this.finish()) this.resolve(result as T);
          return;
        }
        this.invocationId = invocationId;
        if (this.thenAttach) this.host.write(this.frame());
        return;
      }
      case 'result': {
        if (!this.finish()) return;
        if (f.ok === true) {
          const value = resultValue(f);
          this.resolve((this.kind === 'output' ? { ready: true, result: value } : value) as T);
        } else this.reject(errorOf(f));
        return;
      }
      case 'ok':
        if (this.finish()) this.resolve(undefined as T);
        return;
      case 'error':
        if (!this.finish()) return;
        if (this.kind === 'output' && f.code === NOT_READY_CODE)
          this.resolve({ ready: false } as T);
        else this.reject(errorOf(f));
        return;
      default:
        if (this.finish()) this.reject(protocolError(f.type));
    }
  }

  fail(e: CallError): void {
    if (this.finish()) this.reject(e);
  }
}
