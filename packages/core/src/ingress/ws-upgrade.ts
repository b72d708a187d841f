/** The WebSocket ingress's answers to an upgrade request before a socket exists. */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { IngressError } from '../errors.js';

/**
 * Refuses an upgrade with a JSON answer and closes the socket once it is written: an upgrade socket
 * is paused and outside the HTTP server's timeouts, so one left half-open (its unread body filling
 * the buffer) would never see its client leave.
 */
export function refuseUpgrade(socket: Duplex, e: IngressError): void {
  const status = e.status;
  const body = JSON.stringify(e.body());
  const reason = status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Bad Request';
  socket.once('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Whether a socket's `Origin` may open it (see `WebSocketOptions.allowedOrigins`). */
export function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string> | '*'): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || allowed === '*') return true;
  const o = origin.toLowerCase();
  if (allowed.has(o)) return true;
  try {
    // The ingress's own pages: same host and port as the request was sent to.
    return new URL(o).host === String(req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}
