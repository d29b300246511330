#!/usr/bin/env node
'use strict';
// The `keyward` binary: the compiled CLI (`npm run build` writes dist/).
require('../dist/cli/main.js').main();
