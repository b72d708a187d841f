/**
 * The `latchkey` command line: commander's program with every command, its global options, and
 * the mapping from what went wrong to an exit code (see `exit.ts`).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { AdminApi } from './api.js';
import { registerDeployments } from './commands/deployments.js';
import { registerInv } from './commands/inv.js';
import { registerServe } from './commands/serve.js';
import { registerServices } from './commands/services.js';
import { registerState } from './commands/state.js';
import { CliError, ExitCode } from './exit.js';
import { processIo, styleFor, toJson, type Io, type Style } from './output.js';

/** The admin API's default address (Restate's admin port). */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9070';

/** What a command's action needs: the process, the admin API, the style, the output format. */
export interface CommandContext {
  io: Io;
  api: AdminApi;
  style: Style;
  /** `-o`: `table` (for people) or `json` (the API's answer, for programs). */
  output: 'table' | 'json';
  /** Writes to stdout. */
  print(text: string): void;
  /** Writes a message line to stderr. */
  note(text: string): void;
  /** Prints the API's answer as JSON (`-o json`) or as `render` makes it (`-o table`). */
  show<T>(value: T, render: (v: T) => string): void;
}

/** What the commands get from the program. */
export interface Program {
  io: Io;
  /** The context of the command being run (its options merged with the global ones). */
  context(cmd: Command): CommandContext;
}

/** The `-o, --output` option of read commands. */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format')
    .choices(['table', 'json'])
    .default('table');
}

/** Parses a whole number option (`--limit 10`); a usage error otherwise. */
export function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return n;
  };
}

/** Builds the program; `io` is the process (tests pass their own streams and environment). */
export function buildProgram(io: Io = processIo()): Command {
  const program = new Command('latchkey');
  program
    .description(
      'Operate Latchkey: serve a module of services, list and steer invocations, read and edit state.',
    )
    .version('0.1.0')
    .option(
      '--admin-url <url>',
      `admin API URL (env LATCHKEY_ADMIN_URL; default ${DEFAULT_ADMIN_URL})`,
    )
    .option('--token <token>', 'admin API bearer token (env LATCHKEY_ADMIN_TOKEN)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failure, 2 usage (or a bulk action not confirmed), 3 not found.',
    );

  const ctx: Program = {
    io,
    context(cmd: Command): CommandContext {
      const o = cmd.optsWithGlobals<{ adminUrl?: string; token?: string; output?: string }>();
      const url = o.adminUrl ?? (io.env['LATCHKEY_ADMIN_URL'] || DEFAULT_ADMIN_URL);
      const token = o.token ?? (io.env['LATCHKEY_ADMIN_TOKEN'] || undefined);
      const style = styleFor(io);
      const output = o.output === 'json' ? 'json' : 'table';
      const print = (text: string): void => void io.stdout.write(text);
      return {
        io,
        api: new AdminApi({ url, token }),
        style,
        output,
        print,
        note: (text) => void io.stderr.write(`${text}\n`),
        show: (value, render) => print(output === 'json' ? toJson(value) : render(value)),
      };
    },
  };
  registerServe(program, ctx);
  registerInv(program, ctx);
  registerState(program, ctx);
  registerServices(program, ctx);
  registerDeployments(program, ctx);
  return program;
}

/**
 * Runs the command line (`argv` as `process.argv`: node, script, then the arguments) and returns
 * the exit code; errors are reported on stderr.
 */
export async function run(argv: readonly string[], io: Io = processIo()): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return ExitCode.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed its message (and the help) already.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version'
        ? ExitCode.OK
        : ExitCode.USAGE;
    }
    if (e instanceof CliError) {
      io.stderr.write(`${styleFor({ ...io, stdout: io.stderr }).red('error')}: ${e.message}\n`);
      return e.exitCode;
    }
    io.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    return ExitCode.FAILURE;
  }
}
