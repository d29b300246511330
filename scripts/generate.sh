#!/usr/bin/env bash
# Regenerates src/gen/ from proto/: ts-proto messages and grpc-js services (buf.gen.yaml), and
# the descriptor sets that server reflection serves (keyward's own and the health service's).
set -euo pipefail
cd "$(dirname "$0")/.."
buf lint
buf generate
buf build --as-file-descriptor-set -o src/gen/keyward.binpb
buf build node_modules/grpc-health-check/proto --as-file-descriptor-set -o src/gen/health.binpb
