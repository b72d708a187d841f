/**
 * WebSocket liveness (docs/PROTOCOL.md "Limits and liveness"):
 * - heartbeats: a socket that does not answer the server's pings is closed; one that does stays;
 * - backpressure: a consumer that stops reading is closed with 1013 once its send buffer passes
 *   the limit, instead of the server buffering without bound; the server stays healthy.
 * The slow consumer is a raw TCP socket speaking WebSocket, so the test controls exactly when
 * it reads.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { serve, service, type Context, type LatchkeyServer } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { deletePrefix, FAST_TIMINGS, newPrefix, quietLogger, until } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

/** A service whose answer is as large as asked. */
const blob = service({
  name: 'blob',
  handlers: {
    make: async (_ctx: Context, size: number) => 'x'.repeat(size),
  },
});

async function start(
  prefix: string,
  webSocket: { heartbeatMs?: number; maxBufferedBytes?: number },
): Promise<LatchkeyServer> {
  return serve({
    services: [blob],
    store: createRedisStore({ ...redisTarget, prefix, ...FAST_TIMINGS, logger: quietLogger }),
    port: 0,
    host: '127.0.0.1',
    handleSignals: false,
    webSocket,
    logger: quietLogger,
  });
}

function wsUrl(server: LatchkeyServer): string {
  return `${server.url.replace(/^http/, 'ws')}/ws`;
}

/** Opens a `ws` client and waits until it is open. */
async function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** A client text frame (masked, as RFC 6455 requires of clients). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const n = payload.length;
  const head =
    n < 126 ? Buffer.from([0x81, 0x80 | n]) : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff]);
  const masked = Buffer.alloc(n);
  for (let i = 0; i < n; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([head, mask, masked]);
}

/** Server frames (unmasked) in `buf`: complete ones, and the unparsed rest. */
function serverFrames(buf: Buffer): {
  frames: { opcode: number; payload: Buffer }[];
  rest: Buffer;
} {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    let len = buf[at + 1]! & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = at + 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      off = at + 10;
    }
    if (buf.length < off + len) break;
    frames.push({ opcode: buf[at]! & 0x0f, payload: buf.subarray(off, off + len) });
    at = off + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** A raw WebSocket connection that does not read until told to. */
async function rawSocket(server: LatchkeyServer): Promise<{ sock: Socket; pending: Buffer }> {
  const { hostname, port } = new URL(server.url);
  const sock = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  sock.write(
    `GET /ws HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      // Stop reading: from here on the kernel's buffers fill, then the server's.
      sock.pause();
      const head = buf.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${head}`));
      buf = buf.subarray(end + 4);
      resolve();
    };
    sock.on('data', onData);
  });
  return { sock, pending: buf };
}

describe('WebSocket liveness', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer | undefined;
  const clients: { close(): void }[] = [];

  afterEach(async () => {
    for (const c of clients) c.close();
    clients.length = 0;
    await server?.close();
    server = undefined;
  });
  afterAll(async () => {
    await deletePrefix(redisTarget, prefix);
  });

  it('closes a socket that stops answering pings and keeps one that answers', async () => {
    const heartbeatMs = 200;
    server = await start(prefix, { heartbeatMs });
    const silent = await open(wsUrl(server), { autoPong: false });
    const lively = await open(wsUrl(server));
    clients.push({ close: () => silent.terminate() }, { close: () => lively.terminate() });
    let pings = 0;
    lively.on('ping', () => pings++);
    const t0 = Date.now();
    const closed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));

    // The silent socket is dropped at the first heartbeat after the ping it ignored.
    expect(await closed).toBe(1006); // terminated: no closing handshake with a dead peer
    expect(Date.now() - t0).toBeGreaterThanOrEqual(heartbeatMs);
    // The answering one outlives several more heartbeats and still works.
    await until('the answering socket to get 5 pings', () => pings >= 5, 30_000);
    expect(lively.readyState).toBe(WebSocket.OPEN);
    lively.send(JSON.stringify({ id: 'p', type: 'ping' }));
    const pong = await new Promise<unknown>((resolve) =>
      lively.once('message', (d) => resolve(JSON.parse(String(d)))),
    );
    expect(pong).toEqual({ id: 'p', type: 'pong' });
  });

  it('closes a consumer that stopped reading with 1013 once its send buffer passes the limit', async () => {
    const maxBufferedBytes = 256 * 1024;
    server = await start(prefix, { maxBufferedBytes, heartbeatMs: 60_000 });
    const { sock, pending } = await rawSocket(server);
    clients.push({ close: () => sock.destroy() });

    // 40 answers of 512 KiB (20 MiB): more than the kernel's socket buffers hold, so the server's
    // own send buffer has to grow past the limit.
    const calls = 40;
    const size = 512 * 1024;
    for (let i = 0; i < calls; i++) {
      sock.write(
        clientFrame(
          JSON.stringify({
            id: `c${i}`,
            type: 'call',
            service: 'blob',
            handler: 'make',
            input: size,
            idempotencyKey: `blob-${i}`,
          }),
        ),
      );
    }
    // Every call ran (their results are durable, whatever happens to this socket).
    const store = server.store;
    await until(
      'all calls to complete',
      async () => {
        for (let i = 0; i < calls; i++) {
          const id = await store.lookup({
            service: 'blob',
            handler: 'make',
            idempotencyKey: `blob-${i}`,
          });
          if (id === undefined || (await store.describe(id))?.status !== 'completed') return false;
        }
        return true;
      },
      60_000,
    );

    // Now read everything the server sent: some results, then its close frame.
    let buf = pending;
    const results: string[] = [];
    let closeCode: number | undefined;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        const { frames, rest } = serverFrames(Buffer.concat([buf, d]));
        buf = rest;
        for (const f of frames) {
          if (f.opcode === 0x1) {
            const m = JSON.parse(f.payload.toString()) as { type: string; id: string };
            if (m.type === 'result') results.push(m.id);
          } else if (f.opcode === 0x8) {
            closeCode = f.payload.readUInt16BE(0);
            resolve();
          }
        }
      };
      sock.on('data', onData);
      sock.once('close', () => resolve());
      sock.once('error', reject);
      sock.resume();
    });
    expect(closeCode).toBe(1013);
    expect(results.length).toBeLessThan(calls);

    // The server is fine: a new client gets a result at once.
    const ws = await open(wsUrl(server));
    clients.push({ close: () => ws.terminate() });
    const answer = new Promise<{ type: string; value?: unknown }>((resolve) =>
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as { type: string; value?: unknown };
        if (m.type === 'result') resolve(m);
      }),
    );
    ws.send(
      JSON.stringify({ id: 'after', type: 'call', service: 'blob', handler: 'make', input: 3 }),
    );
    expect(await answer).toMatchObject({ type: 'result', value: 'xxx' });
  });
});
