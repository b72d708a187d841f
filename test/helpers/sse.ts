/**
 * A reader of the admin API's `GET /events` (text/event-stream) over `http.get`: it records every
 * event and comment as they arrive, and the JSON body of a refused request.
 */
import { get, type ClientRequest } from 'node:http';

export interface EventReader {
  status: number;
  /** The `data:` payloads, parsed, in order. */
  readonly events: Record<string, unknown>[];
  /** The comment lines (`: keep-alive`, `: ready`), without the colon. */
  readonly comments: string[];
  /** The body of a refused request, parsed, once it ended. */
  readonly body: Promise<Record<string, unknown> | undefined>;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Called with each comment as it arrives. */
  onComment: (comment: string) => void;
  /** Closes the connection (as a client that leaves). */
  close(): void;
}

/** Opens `path` on the admin server at `base`; resolves once the answer's head arrived. */
export function openEvents(base: string, path: string, token?: string): Promise<EventReader> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = get(
      `${base}${path}`,
      { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } },
      (res) => {
        const events: Record<string, unknown>[] = [];
        const comments: string[] = [];
        let buf = '';
        let text = '';
        res.setEncoding('utf8');
        const body = new Promise<Record<string, unknown> | undefined>((done) => {
          res.on('end', () => {
            try {
              done(text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>));
            } catch {
              done(undefined);
            }
          });
          res.on('close', () => done(undefined));
        });
        res.on('data', (chunk: string) => {
          if (res.statusCode !== 200) {
            text += chunk;
            return;
          }
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            for (const line of block.split('\n')) {
              if (line.startsWith('data: '))
                events.push(JSON.parse(line.slice(6)) as Record<string, unknown>);
              else if (line.startsWith(':')) {
                const c = line.slice(1).trim();
                comments.push(c);
                reader.onComment(c);
              }
            }
          }
        });
        res.on('error', () => undefined);
        const reader: EventReader = {
          status: res.statusCode ?? 0,
          events,
          comments,
          body,
          headers: res.headers,
          onComment: () => undefined,
          close: () => req.destroy(),
        };
        resolve(reader);
      },
    );
    req.on('error', reject);
  });
}
