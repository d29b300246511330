#!/usr/bin/env node
'use strict';
// The `keyward` binary: the compiled CLI (`npm run build` writes dist/).
// `serve` sets up tracing first: grpc-js and ioredis are instrumented when they are loaded.
const args = process.argv.slice(2);
if (args[0] === 'serve') require('../dist/observability/preload.js');
// Plain `keyward serve` starts the sidecar without loading commander and the admin CLI, whose
// modules a long-running sidecar would keep in its heap for nothing.
if (args.length === 1 && args[0] === 'serve') require('../dist/cli/serve.js').serve();
else require('../dist/cli/main.js').main();
