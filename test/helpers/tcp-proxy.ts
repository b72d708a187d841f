/**
 * A TCP proxy in front of an ingress port, for the WebSocket client tests: it
 * can black-hole one direction of every connection (frames "sent" but never
 * delivered) and cut every connection at once, like a network failure.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** The proxy's port (connect here instead of the target). */
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Drops, from now on, the bytes of every open connection flowing `up`
   * (client → server) or `down` (server → client). New connections are not affected.
   */
  blackhole(direction: 'up' | 'down'): void;
  /** Destroys every open connection (both sides). */
  cutAll(): void;
  /** While true, new connections are closed at once (the target looks unreachable). */
  refuse(on: boolean): void;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on a free port of 127.0.0.1 forwarding to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; up: boolean; down: boolean }>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, up: true, down: true };
    pairs.add(pair);
    client.on('data', (d) => {
      if (pair.up) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (pair.down) client.write(d);
    });
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const cutAll = (): void => {
    for (const p of [...pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    get connections() {
      return pairs.size;
    },
    blackhole(direction) {
      for (const p of pairs) p[direction] = false;
    },
    cutAll,
    refuse(on) {
      refusing = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cutAll();
        server.close(() => resolve());
      }),
  };
}
