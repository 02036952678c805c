#!/usr/bin/env bash
# Runs murmur's whole test suite against the real broker, Postgres and model weights (set up first, if
# needed). Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
cargo test --release --workspace "$@"
