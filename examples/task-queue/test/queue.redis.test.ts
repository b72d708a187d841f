/**
 * The task queue end to end: tasks submitted with idempotency key = task id run
 * once however often they are submitted; a delayed task does not start before
 * its delay; results are fetched with `result()` by the submitting process and,
 * by task id alone, by another process; a failing task's error reaches both.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { TerminalError } from '@latchkey/core';
import { describe, inject, it } from 'vitest';
import { TaskQueue } from '../src/queue.js';
import { taskWorker } from '../src/task-worker.js';
import { deletePrefix, newPrefix, startServer } from '../../../test/helpers/harness.js';

const redisTarget = inject('redisTarget');

/** Runs dist/result.js in its own process; resolves with its exit code and output. */
function resultInAnotherProcess(
  ingress: string,
  taskId: string,
  onStarted: (kill: () => void) => void,
) {
  const file = fileURLToPath(new URL('../dist/result.js', import.meta.url));
  const proc = spawn(process.execPath, [file, taskId], {
    env: { ...process.env, INGRESS_URL: ingress },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onStarted(() => proc.kill('SIGKILL'));
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, out: out.trim(), err })),
  );
}

describe('task queue', () => {
  it('runs each task once, delays when asked, and serves results to any process', async ({
    onTestFinished,
    expect,
  }) => {
    const prefix = newPrefix();
    const runs: Array<{ id: string; at: number }> = [];
    const server = await startServer(redisTarget, prefix, [
      taskWorker({
        upper: async (payload, task) => {
          runs.push({ id: task.id, at: Date.now() });
          return String(payload).toUpperCase();
        },
        fail: async () => {
          throw new TerminalError('cannot do that', { errorCode: 422 });
        },
      }),
    ]);
    const kills: Array<() => void> = [];
    onTestFinished(async () => {
      kills.forEach((k) => k());
      await server.close();
      await deletePrefix(redisTarget, prefix);
    });
    const queue = new TaskQueue(server.url);
    const id = (n: string): string => `${n}-${randomUUID().slice(0, 8)}`;
    const [a, b, delayed, bad] = [id('a'), id('b'), id('delayed'), id('bad')];

    const DELAY = 1500;
    const t0 = Date.now();
    const sa = await queue.submit({ id: a, kind: 'upper', payload: 'apple' });
    const sd = await queue.submit(
      { id: delayed, kind: 'upper', payload: 'later' },
      { delayMs: DELAY },
    );
    const sb = await queue.submit({ id: b, kind: 'upper', payload: 'banana' });
    const sbad = await queue.submit({ id: bad, kind: 'fail', payload: null });
    expect([sa.status, sd.status, sb.status, sbad.status]).toEqual([
      'Accepted',
      'Accepted',
      'Accepted',
      'Accepted',
    ]);
    // The same task id again: the same invocation, not a second run.
    const dup = await queue.submit({ id: a, kind: 'upper', payload: 'apple' });
    expect(dup).toMatchObject({ invocationId: sa.invocationId, status: 'PreviouslyAccepted' });

    // Results in the submitting process…
    expect(await sa.result()).toEqual({ taskId: a, output: 'APPLE' });
    expect(await dup.result()).toEqual({ taskId: a, output: 'APPLE' });
    expect(await sb.result()).toEqual({ taskId: b, output: 'BANANA' });
    await expect(sbad.result()).rejects.toThrow(/HTTP 422.*cannot do that/);
    // …and in another process that knows only the task id (it waits for the delayed one).
    const elsewhere = await resultInAnotherProcess(server.url, delayed, (k) => kills.push(k));
    expect(elsewhere.code, elsewhere.err).toBe(0);
    expect(JSON.parse(elsewhere.out)).toEqual({ taskId: delayed, output: 'LATER' });
    const failedElsewhere = await resultInAnotherProcess(server.url, bad, (k) => kills.push(k));
    expect(failedElsewhere.code).toBe(1);
    expect(failedElsewhere.err).toMatch(/cannot do that/);

    // Each task ran once; the delayed one not before its delay.
    expect(runs.map((r) => r.id).sort()).toEqual([a, b, delayed].sort());
    expect(runs.find((r) => r.id === delayed)!.at - t0).toBeGreaterThanOrEqual(DELAY);
  });
});
