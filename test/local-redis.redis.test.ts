/**
 * startLocalRedis's private redis-server never outlives the process that started it, even when
 * that process is SIGKILLed (no exit handler runs): a watchdog holding a pipe from the parent
 * stops the server and removes its temporary data directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { until } from './helpers/harness.js';
import { onClusterPass } from './helpers/redis.js';

/** True while a process with this pid runs (a zombie waiting to be reaped does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// Skipped on the cluster pass (onClusterPass): this file never uses the project's Redis, as it
// tests startLocalRedis, the standalone server itself; there it would only repeat the `redis` pass.
describe.skipIf(onClusterPass)('startLocalRedis', () => {
  it('stops its redis-server and removes the data directory when its process is SIGKILLed', async ({
    onTestFinished,
  }) => {
    const script = [
      "const { startLocalRedis } = await import('@latchkey/redis-store/testing');",
      'const r = await startLocalRedis();',
      'process.stdout.write(`READY ${r.pid()} ${r.dir}\\n`);',
      'setInterval(() => undefined, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let out = '';
    const ready = await new Promise<{ pid: number; dir: string }>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\d+) (\S+)/.exec(out);
        if (m) resolve({ pid: Number(m[1]), dir: m[2]! });
      });
      child.once('exit', (code) =>
        reject(new Error(`child exited (${code}) before its Redis was ready: ${out}`)),
      );
    });
    // Whatever the outcome, no redis-server is left behind by this test.
    onTestFinished(() => {
      if (alive(ready.pid)) process.kill(ready.pid, 'SIGKILL');
    });
    expect(alive(ready.pid)).toBe(true);
    expect(existsSync(ready.dir)).toBe(true);

    child.kill('SIGKILL');
    await exited;
    await until('the orphaned redis-server to stop', () => !alive(ready.pid), 15_000);
    await until('its data directory to be removed', () => !existsSync(ready.dir), 15_000);
  });
});
