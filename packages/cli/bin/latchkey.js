#!/usr/bin/env node
// The `latchkey` command. The code is the built package (dist/bin.js, made by `npm run build`);
// this file exists before the build, so that npm links the command at install time.
import '../dist/bin.js';
