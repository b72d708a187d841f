/**
 * Pieces of the harness that `run.ts` and `tracing.ts` share: the load worker thread, CPU time of
 * a process from /proc, the quiet start before a timed window, and percentiles.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { CheckJob, CheckResult, LoadJob, LoadResult } from './load.js';

/** Runs load jobs one at a time on the worker thread (`load.ts`). */
export class LoadWorker {
  private readonly worker = new Worker(new URL('./load.js', import.meta.url));

  run(job: LoadJob): Promise<LoadResult>;
  run(job: CheckJob): Promise<CheckResult>;
  run(job: LoadJob | CheckJob): Promise<LoadResult | CheckResult> {
    return new Promise((resolve, reject) => {
      const onMessage = (
        m: { ok: true; res: LoadResult | CheckResult } | { ok: false; error: string },
      ): void => {
        this.worker.off('error', onError);
        if (m.ok) resolve(m.res);
        else reject(new Error(m.error));
      };
      const onError = (e: Error): void => {
        this.worker.off('message', onMessage);
        reject(e);
      };
      this.worker.once('message', onMessage);
      this.worker.once('error', onError);
      this.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** CPU time (ms) a process has used, from /proc (Linux); undefined elsewhere. */
export function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Before a timed window: the processes together use under this share of one core... */
export const QUIET_CPU_SHARE = 0.05;
/** ...over a sample this long... */
export const QUIET_SAMPLE_MS = 300;
/** ...or this much time has passed. */
export const QUIET_MAX_WAIT_MS = 20_000;

/**
 * Waits until the processes together use less than {@link QUIET_CPU_SHARE} of a core over
 * {@link QUIET_SAMPLE_MS}, or {@link QUIET_MAX_WAIT_MS} has passed; returns the wait (ms).
 */
export async function waitQuiet(pids: (number | undefined)[]): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const a = pids.map((p) => procCpuMs(p) ?? 0);
    const s0 = performance.now();
    await sleep(QUIET_SAMPLE_MS);
    const used = pids.reduce<number>((sum, p, i) => sum + (procCpuMs(p) ?? 0) - a[i]!, 0);
    if (
      used / (performance.now() - s0) < QUIET_CPU_SHARE ||
      performance.now() - t0 > QUIET_MAX_WAIT_MS
    )
      return performance.now() - t0;
  }
}

/** The p-quantile (0..1) of sorted latencies; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
