/**
 * `@latchkey/cli`: the `latchkey` command (see the package README). Its command line is also
 * available as a function, for tools that embed it.
 *
 * @module
 */
export { run, buildProgram, DEFAULT_ADMIN_URL } from './program.js';
export { ExitCode, CliError } from './exit.js';
export { AdminApi, ApiError } from './api.js';
export type { ApiConfig } from './api.js';
export type { Io, OutStream } from './output.js';
