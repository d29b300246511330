#!/usr/bin/env bash
# Fails when src/gen/ is not what `npm run generate` makes from proto/ (or buf lint fails).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent generate
if ! git diff --quiet -- src/gen || [ -n "$(git ls-files --others --exclude-standard src/gen)" ]; then
  echo "src/gen/ is stale: run 'npm run generate' and commit the result" >&2
  git status --short src/gen >&2
  exit 1
fi
echo "generated code is fresh; buf lint is clean"
