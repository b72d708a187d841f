/**
 * The exit codes of the `latchkey` command (documented in the package README) and the error that
 * carries one.
 */

/** Exit codes: 0 ok, 1 failure, 2 usage, 3 not found. */
export const ExitCode = {
  /** Done. */
  OK: 0,
  /** It failed: refused by the server (409, 400, 401), the server unreachable, a bad edit. */
  FAILURE: 1,
  /** The command line was wrong (unknown command or option, a bad value, a missing argument), or a bulk action was not confirmed. */
  USAGE: 2,
  /** The invocation or service named does not exist (the admin API answered 404). */
  NOT_FOUND: 3,
} as const;
/** One of {@link ExitCode}'s values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI reports with a message on stderr and an exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
  override get name(): string {
    return 'CliError';
  }
}

/** A usage error (exit 2). */
export function usage(message: string): CliError {
  return new CliError(ExitCode.USAGE, message);
}
