#!/usr/bin/env bash
# Runs `murmur demo` on a fresh machine: sets up what it needs, builds, then loads the demo corpus through
# the whole pipeline in one process and serves the API. Extra arguments go to `murmur demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo needs: build packages, libtorch, the encoder and the corpus (no broker, browser or
# test data: the demo's queue is in-process; infra/setup.sh adds those for the tests).
infra/system-deps.sh --demo
infra/fetch-assets.sh --demo
infra/postgres.sh
cargo run --release -- demo "$@"
