/**
 * The tracing example (examples/tracing) end to end: its built `main.js` runs as a child process
 * against the test Redis, under a fresh key prefix, and the span tree it prints at the end must
 * show Latchkey's spans of the `order` workflow (names and parents only, never timings):
 *
 * - one trace for everything the workflow run did, rooted at the example's client span;
 * - `ingress order/run`, a child of that client span (the request's `traceparent`);
 * - `attempt order/run` (one, unless every wait suspends), and under an attempt each of the three
 *   steps' `run <name>` spans, each once;
 * - the user span the second step's closure opens (`payments.charge`) under `run charge card`;
 * - `invocation order/run` with `latchkey.invocation.result=success`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, inject, it } from 'vitest';
import { deletePrefix, newPrefix } from './helpers/harness.js';
import { redisEnv } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const MAIN = fileURLToPath(new URL('../examples/tracing/dist/main.js', import.meta.url));
/** The redis-suspend project: every `ctx.run` commit suspends, so a run has several attempts. */
const ALWAYS_SUSPEND = process.env['LATCHKEY_INACTIVITY_TIMEOUT'] === '0';

/** One line of the printed span tree. */
interface SpanLine {
  name: string;
  kind: string;
  /** The rest of the line: shown attributes, `(parent not exported)`. */
  rest: string;
  trace: string;
  parent: SpanLine | undefined;
}

/** Parses the block between `=== trace summary` and `=== end of trace summary ===`. */
function parseSummary(out: string): { spans: SpanLine[]; traces: string[]; text: string } {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.startsWith('=== trace summary:'));
  const end = lines.indexOf('=== end of trace summary ===');
  if (start < 0 || end < start) throw new Error(`no trace summary in the output:\n${out}`);
  const block = lines.slice(start, end + 1);
  const spans: SpanLine[] = [];
  const traces: string[] = [];
  let stack: SpanLine[] = [];
  for (const l of block.slice(1, -1)) {
    const t = /^trace ([0-9a-f]+): \d+ spans$/.exec(l);
    if (t) {
      traces.push(t[1]!);
      stack = [];
      continue;
    }
    const m = /^((?: {2})*)- (.+?) \[(internal|server|client|producer|consumer)\](.*)$/.exec(l);
    if (!m || traces.length === 0) throw new Error(`unexpected summary line: ${JSON.stringify(l)}`);
    const depth = m[1]!.length / 2;
    stack = stack.slice(0, depth);
    const span: SpanLine = {
      name: m[2]!,
      kind: m[3]!,
      rest: m[4]!.trim(),
      trace: traces.at(-1)!,
      parent: stack[depth - 1],
    };
    spans.push(span);
    stack.push(span);
  }
  return { spans, traces, text: block.join('\n') };
}

/** Runs the built example; resolves with its exit code and output. */
function runExample(env: Record<string, string>, onStarted: (kill: () => void) => void) {
  const proc = spawn(process.execPath, [MAIN], {
    env: redisEnv(redisTarget, { ...process.env, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onStarted(() => proc.kill('SIGKILL'));
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, out, err })),
  );
}

describe('tracing example', () => {
  it("prints one trace of the workflow: attempt, its three run spans, the user's span", async ({
    onTestFinished,
    expect,
  }) => {
    const prefix = newPrefix();
    onTestFinished(() => deletePrefix(redisTarget, prefix));
    const run = await runExample({ LATCHKEY_PREFIX: prefix }, (kill) => onTestFinished(kill));
    expect(run.code, `the example failed:\n${run.err}\n${run.out}`).toBe(0);
    const { spans, traces, text } = parseSummary(run.out);
    const named = (name: string): SpanLine[] => spans.filter((s) => s.name === name);

    const attempts = named('attempt order/run');
    expect(
      attempts.length,
      `no \`attempt order/run\` span from Latchkey:\n${text}`,
    ).toBeGreaterThan(0);
    if (!ALWAYS_SUSPEND) expect(attempts, `one attempt expected:\n${text}`).toHaveLength(1);

    const runs = spans.filter((s) => s.name.startsWith('run '));
    expect(runs.map((s) => s.name).sort(), text).toEqual([
      'run charge card',
      'run reserve stock',
      'run ship',
    ]);
    for (const r of runs)
      expect(r.parent?.name, `${r.name}'s parent:\n${text}`).toBe(attempts[0]!.name);
    if (!ALWAYS_SUSPEND) for (const r of runs) expect(r.parent).toBe(attempts[0]);

    const [charge] = named('payments.charge');
    expect(charge?.parent?.name, `the user span's parent:\n${text}`).toBe('run charge card');

    const [ingress] = named('ingress order/run');
    expect(ingress?.kind, text).toBe('server');
    expect(ingress?.parent?.name, `the ingress span's parent:\n${text}`).toBe('place order');

    const invocation = named('invocation order/run');
    expect(invocation, text).toHaveLength(1);
    expect(invocation[0]!.rest, text).toContain('latchkey.invocation.result=success');

    expect(traces, `the workflow's spans are in more than one trace:\n${text}`).toHaveLength(1);
  });
});
