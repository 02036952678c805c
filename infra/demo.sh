#!/usr/bin/env bash
# Runs `murmur demo` on a fresh machine: sets up what it needs, builds, then loads the demo corpus through
# the whole pipeline in one process and serves the API. Extra arguments go to `murmur demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/system-deps.sh
infra/fetch-assets.sh
infra/postgres.sh
cargo run --release -- demo "$@"
