'use strict';
// Loaded with `node --require` by the start-up footprint test: when the process exits, writes
// one JSON line to stderr naming every npm package whose modules it loaded.
const { writeSync } = require('node:fs');

process.on('exit', () => {
  const packages = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file);
    if (m) packages.add(m[1].replace('\\', '/'));
  }
  writeSync(2, `${JSON.stringify({ loadedPackages: [...packages].sort() })}\n`);
});
