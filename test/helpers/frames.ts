/**
 * A raw WebSocket client of the ingress for tests: it records every frame it receives (parsed and
 * as text) and waits for the one a test expects, woken by each frame that arrives.
 */
import WebSocket from 'ws';

export type Frame = Record<string, unknown>;

export class FrameSocket {
  readonly frames: Frame[] = [];
  /** Every frame as the server sent it (to search for what must never appear). */
  readonly raw: string[] = [];
  readonly ws: WebSocket;
  /** The close code and reason, once the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private wake: () => void = () => undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      this.raw.push(String(data));
      this.frames.push(JSON.parse(String(data)) as Frame);
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('error', () => undefined);
  }

  /** Opens `/ws` on the ingress at `base` (`http://…`). */
  static async open(base: string): Promise<FrameSocket> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`);
    const s = new FrameSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return s;
  }

  send(data: string | Buffer | Frame): void {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  }

  /** The first received frame matching `pred` (waits up to 30 s). */
  async next(what: string, pred: (f: Frame) => boolean): Promise<Frame> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > deadline)
        throw new Error(`no ${what} frame; got ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Sends a request and waits for its first answer of one of `types`. */
  request(
    f: Frame,
    types: string[] = ['ok', 'error', 'result', 'subscribed', 'accepted', 'pong', 'unsubscribed'],
  ): Promise<Frame> {
    this.send(f);
    return this.next(
      `an answer to ${String(f['id'])}`,
      (x) => x['id'] === f['id'] && types.includes(String(x['type'])),
    );
  }

  /** The answer frames to request `id`. */
  answersTo(id: string): Frame[] {
    return this.frames.filter((f) => f['id'] === id);
  }

  close(): void {
    this.ws.terminate();
  }
}
