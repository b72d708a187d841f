/**
 * Redis MONITOR on a raw socket, for tests that observe the commands Redis runs (on a cluster, one
 * socket per master).
 *
 * ioredis's `monitor()` can take the first monitor lines for command replies when they arrive in
 * one read with MONITOR's own `OK` on a busy server ("Command queue state error"), so the lines
 * are read here directly: `+<time> [<db> <source>] "arg" "arg" ...`.
 */
import { connect, type Socket } from 'node:net';
import { until } from './harness.js';
import { masterClients, rawClient, type RedisTarget } from './redis.js';

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
   * so once a marker sent now shows up, so has all that ran before it (on a cluster, a marker per
   * master; lines of different masters are merged as they arrive, in no common order).
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

/** MONITOR on one node's raw socket; resolves once the node confirmed it. */
async function monitorNode(
  host: string,
  port: number,
  emit: (c: MonitoredCommand) => void,
): Promise<Socket> {
  const sock = connect(port, host);
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
        emit({
          source: m[1]!,
          args: [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => unescape(a[1]!)),
        });
      }
    });
    sock.write('MONITOR\r\n');
  });
  sock.on('error', () => undefined);
  return sock;
}

/**
 * Starts MONITOR on the project's Redis (on a cluster, on every master, the lines merged as they
 * arrive); resolves once every node confirmed it (every later command is seen).
 */
export async function startMonitor(redisTarget: RedisTarget): Promise<Monitor> {
  const commands: MonitoredCommand[] = [];
  const listeners: ((c: MonitoredCommand) => void)[] = [];
  const emit = (c: MonitoredCommand): void => {
    commands.push(c);
    for (const fn of listeners) fn(c);
  };
  // A connection per master, for the markers of caughtUp().
  const client = rawClient(redisTarget);
  client.on('error', () => undefined);
  const nodes = await masterClients(client);
  const socks = await Promise.all(
    nodes.map((n) => monitorNode(n.options.host ?? '127.0.0.1', n.options.port ?? 6379, emit)),
  );
  return {
    commands,
    on: (fn) => listeners.push(fn),
    caughtUp: async () => {
      const marker = `monitor-caught-up-${Math.random()}`;
      await Promise.all(nodes.map((n, i) => n.echo(`${marker}-${i}`)));
      await until('MONITOR to catch up', () =>
        nodes.every((_, i) =>
          commands.some(
            (c) => c.args[0]?.toLowerCase() === 'echo' && c.args[1] === `${marker}-${i}`,
          ),
        ),
      );
    },
    close: () => {
      for (const s of socks) s.destroy();
      client.disconnect();
    },
  };
}
