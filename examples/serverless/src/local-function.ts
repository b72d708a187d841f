/**
 * The deployment's fetch handler (function.ts) on `node:http`, standing in for the serverless
 * platform: each request becomes a `Request`, each `Response` is written back.
 *
 *   PORT=9080 node examples/serverless/dist/local-function.js
 *
 * (`@latchkey/core`'s own `createEndpointHandler` is a `node:http` handler already; this file
 * runs the very handler a fetch runtime would.)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import fn from './function.js';

/** A running local function. */
export interface LocalFunction {
  /** Its base URL, to register with an engine. */
  readonly url: string;
  close(): Promise<void>;
}

async function toRequest(req: IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const method = req.method ?? 'GET';
  return new Request(new URL(req.url ?? '/', 'http://127.0.0.1'), {
    method,
    headers,
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const response = await fn.fetch(await toRequest(req));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(e instanceof Error ? e.message : String(e));
  }
}

/** Serves the function on 127.0.0.1:`port` (0: a free port). */
export async function startLocalFunction(port = 0): Promise<LocalFunction> {
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Run as a program (not imported by main.ts): listen on PORT, or a free port.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const local = await startLocalFunction(Number(process.env['PORT'] ?? 0));
  console.log(`function listening on ${local.url}`);
}
