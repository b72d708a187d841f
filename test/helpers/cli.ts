/**
 * Running the real `latchkey` binary (packages/cli/dist/bin.js, built) as child processes: a
 * served module (`latchkey serve`) and one-shot commands with their output and exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@latchkey/redis-store/testing';

/** The repository root (commands run there, so module paths are relative to it). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The built binary. */
export const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

/**
 * The environment of a child: this process's, without REDIS_URL, REDIS_CLUSTER_NODES and the
 * CLI's own variables.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'LATCHKEY_ADMIN_URL',
    'LATCHKEY_ADMIN_TOKEN',
    'NO_COLOR',
    'FORCE_COLOR',
    'CLICOLOR_FORCE',
    'EDITOR',
    'VISUAL',
    'LATCHKEY_EDITOR',
  ]) {
    delete env[k];
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** What a command did. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `latchkey ...args` to its end (stdin is not a terminal) and returns its output and exit code. */
export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`latchkey ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A `latchkey serve` child process. */
export interface Served {
  readonly proc: ChildProcess;
  readonly ingressUrl: string;
  readonly adminUrl: string;
  readonly redisUrl: string;
  /** Everything it printed so far. */
  output(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `latchkey serve <module>` on free ports (REDIS_URL unset: it starts a private
 * redis-server) and waits until it prints its URLs.
 */
export async function startServe(
  module: string,
  extraArgs: readonly string[] = [],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<Served> {
  const port = await freePort();
  const adminPort = await freePort();
  const proc = spawn(
    process.execPath,
    [BIN, 'serve', module, '--port', String(port), '--admin-port', String(adminPort), ...extraArgs],
    { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const admin = /admin\s+(http:\/\/\S+)/.exec(out);
    const ingress = /ingress\s+(http:\/\/\S+)/.exec(out);
    const redis = /redis\s+(redis:\/\/\S+)/.exec(out);
    if (admin && ingress && redis) {
      return {
        proc,
        ingressUrl: ingress[1]!,
        adminUrl: admin[1]!,
        redisUrl: redis[1]!,
        output: () => out,
        stop: async (signal = 'SIGTERM') => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      };
    }
    if (proc.exitCode !== null) throw new Error(`latchkey serve exited (${proc.exitCode}): ${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`latchkey serve did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Parses a command's stdout as JSON, with the output in the error when it is not. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests assert on the shape
export function json<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
}
