#!/usr/bin/env node
'use strict';
// The `keyward` binary: the compiled CLI (`npm run build` writes dist/).
// `serve` sets up tracing first: grpc-js and ioredis are instrumented when they are loaded.
if (process.argv[2] === 'serve') require('../dist/observability/preload.js');
require('../dist/cli/main.js').main();
