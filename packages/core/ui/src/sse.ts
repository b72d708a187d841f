/**
 * Reading a `text/event-stream` (`GET /events`): the JSON payloads of its `data:` lines, one
 * event per blank-line-terminated block, whatever the chunks the network cuts it into. Pure: no
 * DOM, no network.
 */

/** One event of `GET /events` (docs/ADMIN-API.md, "Live updates"). */
export interface AdminEvent {
  /** `status` or `journal` (others may come). */
  type: string;
  id?: string;
  status?: string;
  service?: string;
  handler?: string;
  key?: string;
  length?: number;
  at?: number;
}

/** Splits a text/event-stream into the JSON payloads of its `data:` lines. */
export class EventStreamParser {
  private buf = '';
  /** A chunk's last `\r`, held until the next chunk says whether a `\n` follows it. */
  private cr = false;
  /** Feeds a chunk; returns the events it completed. */
  push(chunk: string): AdminEvent[] {
    let text = (this.cr ? '\r' : '') + chunk;
    this.cr = text.endsWith('\r');
    if (this.cr) text = text.slice(0, -1);
    this.buf += text.replace(/\r\n?/g, '\n');
    const out: AdminEvent[] = [];
    let end: number;
    while ((end = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data === '') continue;
      try {
        const v = JSON.parse(data) as unknown;
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(v as AdminEvent);
      } catch {
        // not JSON: ignore the event, the next re-read catches up
      }
    }
    return out;
  }
}
