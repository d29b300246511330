#!/usr/bin/env bash
# Regenerates src/gen/ from proto/: ts-proto messages and grpc-js services (buf.gen.yaml), and
# the descriptor sets that server reflection serves (keyward's own and the health service's).
# With an argument, writes <dir>/src/gen instead (used by check-generated.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
buf lint
buf generate --output "$out"
buf build --as-file-descriptor-set -o "$out/src/gen/keyward.binpb"
buf build node_modules/grpc-health-check/proto --as-file-descriptor-set -o "$out/src/gen/health.binpb"
