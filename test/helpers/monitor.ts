/**
 * Redis MONITOR on a raw socket, for tests that observe the commands Redis runs.
 *
 * ioredis's `monitor()` can take the first monitor lines for command replies when they arrive in
 * one read with MONITOR's own `OK` on a busy server ("Command queue state error"), so the lines
 * are read here directly: `+<time> [<db> <source>] "arg" "arg" ...`.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { until } from './harness.js';

/** One command Redis ran: its arguments and its source (`<ip>:<port>` of a client, or `lua`). */
export interface MonitoredCommand {
  args: string[];
  source: string;
}

export interface Monitor {
  /** Every command seen so far, in the order Redis ran them. */
  readonly commands: MonitoredCommand[];
  /** Calls `fn` for every command from now on. */
  on(fn: (c: MonitoredCommand) => void): void;
  /**
   * Waits until MONITOR has shown everything Redis ran so far: lines come in execution order,
   * so once a marker sent now shows up, so has all that ran before it.
   */
  caughtUp(): Promise<void>;
  close(): void;
}

/** Undoes MONITOR's quoting of one argument (\", \\, \n, \r, \t, \a, \b, \xHH). */
function unescape(s: string): string {
  const named: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };
  return s.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) =>
    e[0] === 'x' ? String.fromCharCode(parseInt(e.slice(1), 16)) : (named[e] ?? e),
  );
}

/** Starts MONITOR; resolves once Redis confirmed it (every later command is seen). */
export async function startMonitor(redisUrl: string): Promise<Monitor> {
  const { hostname, port } = new URL(redisUrl);
  const sock = connect(Number(port), hostname);
  const commands: MonitoredCommand[] = [];
  const listeners: ((c: MonitoredCommand) => void)[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line === '+OK') {
          resolve();
          continue;
        }
        const m = /^\+\S+ \[\d+ (\S+)\] (.*)$/.exec(line);
        if (!m) continue;
        const c = {
          source: m[1]!,
          args: [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => unescape(a[1]!)),
        };
        commands.push(c);
        for (const fn of listeners) fn(c);
      }
    });
    sock.write('MONITOR\r\n');
  });
  sock.on('error', () => undefined);
  return {
    commands,
    on: (fn) => listeners.push(fn),
    caughtUp: async () => {
      const r = new Redis(redisUrl);
      try {
        const marker = `monitor-caught-up-${Math.random()}`;
        await r.echo(marker);
        await until('MONITOR to catch up', () =>
          commands.some((c) => c.args[0]?.toLowerCase() === 'echo' && c.args[1] === marker),
        );
      } finally {
        r.disconnect();
      }
    },
    close: () => sock.destroy(),
  };
}
