#!/usr/bin/env bash
# Fails when buf lint fails or src/gen/ differs from what `npm run generate` makes from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash scripts/generate.sh "$tmp"
if ! diff -r src/gen "$tmp/src/gen" >/dev/null; then
  echo "src/gen/ is stale: run 'npm run generate' and commit the result" >&2
  diff -rq src/gen "$tmp/src/gen" >&2 || true
  exit 1
fi
echo "buf lint is clean and src/gen/ is fresh"
