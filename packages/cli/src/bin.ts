#!/usr/bin/env node
/** The `latchkey` executable: runs the command line and exits with its code (see `exit.ts`). */
import { run } from './program.js';

const code = await run(process.argv);
// Whatever handles are still open (a readline, a socket closing), the command is done.
process.exit(code);
