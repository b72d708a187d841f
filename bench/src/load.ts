/**
 * The load generator, run in a worker thread so that the HTTP client has its
 * own event loop (as a separate client process would) and does not queue
 * behind the engine's work on the main thread.
 *
 * It runs `concurrency` closed loops, each sending one request at a time over
 * a keep-alive connection until the deadline, and reports every latency.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';

export type ScenarioName = 'noop' | 'workflow' | 'counter';

/** What the main thread asks for. */
export interface LoadJob {
  base: string;
  scenario: ScenarioName;
  concurrency: number;
  /** Stop starting new requests after this long (ms); or after `maxRequests`, whichever first. */
  durationMs: number;
  maxRequests?: number;
  /** Unique per job: workflow ids and counter keys are made from it. */
  tag: string;
  /** Number of counter keys. */
  keys: number;
}

/** What the worker answers. */
export interface LoadResult {
  ok: number;
  errors: number;
  /** A few error descriptions (status and body, or the exception). */
  errorSamples: string[];
  /** From the first request sent to the last response received (ms). */
  elapsedMs: number;
  /** Latency of every successful request (ms). */
  latencies: Float64Array;
}

interface Reply {
  status: number;
  body: string;
}

function post(agent: Agent, url: URL, path: string, body: string | undefined): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> =
      body === undefined ? { 'content-length': 0 } : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = request({ agent, host: url.hostname, port: url.port, path, method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The request of the n-th invocation of a job, and the body its reply must have. */
function nth(job: LoadJob, n: number): { path: string; body: string | undefined; expect: (b: string) => boolean } {
  switch (job.scenario) {
    case 'noop':
      return { path: '/bench/noop', body: undefined, expect: (b) => b === 'null' };
    case 'workflow':
      return { path: `/threeSteps/${job.tag}-${n}/run`, body: undefined, expect: (b) => b === '6' };
    case 'counter':
      return { path: `/counter/${job.tag}-k${n % job.keys}/add`, body: '1', expect: (b) => /^\d+$/.test(b) };
  }
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.base);
  // A fresh agent per job: no socket the server closed while we were idle gets reused.
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let ok = 0;
  let errors = 0;
  let seq = 0;
  const max = job.maxRequests ?? Infinity;
  const start = performance.now();
  const deadline = start + job.durationMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline && seq < max) {
      const r = nth(job, seq++);
      const t0 = performance.now();
      try {
        const reply = await post(agent, url, r.path, r.body);
        const t1 = performance.now();
        if (reply.status === 200 && r.expect(reply.body)) {
          ok++;
          latencies.push(t1 - t0);
        } else {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(`${r.path}: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
        }
      } catch (e) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(`${r.path}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const elapsedMs = performance.now() - start;
  agent.destroy();
  return { ok, errors, errorSamples, elapsedMs, latencies: Float64Array.from(latencies) };
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (job: LoadJob) => {
    runLoad(job).then(
      (res) => port.postMessage({ ok: true, res }, [res.latencies.buffer as ArrayBuffer]),
      (e: unknown) => port.postMessage({ ok: false, error: String((e as Error)?.stack ?? e) }),
    );
  });
}
