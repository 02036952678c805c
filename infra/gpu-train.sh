#!/usr/bin/env bash
# Trains task-model variants side by side on one NVIDIA GPU (never in CI), each `murmur-train fit --device
# cuda` in its own process, and prints their validation scores; then choose one on those scores (never on
# test) and score it on the test splits with `murmur-train eval --split test --card`.
#
#   infra/gpu-train.sh OUT_DIR 'NAME FIT-FLAGS…' ['NAME FIT-FLAGS…' …]
#   e.g. infra/gpu-train.sh /tmp/fits 'b2 --branch-layers 2' 'full --branch-layers 6'
#
# Each variant writes OUT_DIR/NAME (model.json, model.safetensors, fit.json) and OUT_DIR/NAME.log. Every
# variant shares the GPU and the cores: MURMUR_GPU_TRAIN_SECONDS (default 300) is each fit's --max-seconds,
# MURMUR_THREADS (default: cores / variants) its CPU threads. Needs target/release/murmur-train (or
# MURMUR_TRAIN_BIN), the encoder and data infra/fetch-assets.sh fetches (MURMUR_MODEL_DIR, MURMUR_DATA_CACHE,
# MURMUR_SHARED_DATA as for murmur-train; the encoder folder's name is the encoder id the model records and
# the worker checks, so keep it all-MiniLM-L6-v2), and PyTorch 2.11's CUDA libraries (TORCH_LIB, default:
# the installed PyTorch's torch/lib).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[gpu-train] %s\n' "$*"; }
die() { printf '[gpu-train] error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: infra/gpu-train.sh OUT_DIR 'NAME FIT-FLAGS…' ['NAME FIT-FLAGS…' …]"
out=$1; shift
# shellcheck source=infra/gpu-env.sh
. infra/gpu-env.sh
BIN=${MURMUR_TRAIN_BIN:-target/release/murmur-train}
[ -x "$BIN" ] || die "no $BIN: build it with cargo build --release -p murmur-train (or set MURMUR_TRAIN_BIN)"
export MURMUR_THREADS=${MURMUR_THREADS:-$(( $(nproc) / $# > 0 ? $(nproc) / $# : 1 ))}
seconds=${MURMUR_GPU_TRAIN_SECONDS:-300}
mkdir -p "$out"

declare -A pids
for variant in "$@"; do
  read -r name flags <<<"$variant"
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "variant name '$name': expected letters, digits, '_' or '-'"
  # shellcheck disable=SC2086 # the flags are words on purpose
  "$BIN" fit --device cuda --max-seconds "$seconds" --out "$out/$name" $flags >"$out/$name.log" 2>&1 &
  pids[$name]=$!
  say "$name: fit $flags (pid ${pids[$name]}, $MURMUR_THREADS threads, ${seconds}s of training)"
done
failed=0
for name in "${!pids[@]}"; do
  if wait "${pids[$name]}"; then say "$name: done"; else say "$name: FAILED (see $out/$name.log)"; tail -n 20 "$out/$name.log" >&2; failed=1; fi
done

say "validation scores (best checkpoint; mean of sentiment macro-F1, emotion macro-F1, NER F1):"
for name in "${!pids[@]}"; do
  [ -f "$out/$name/fit.json" ] || continue
  python3 - "$name" "$out/$name/fit.json" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
fit = json.load(open(path))
report = fit["report"]
best = next(c for c in report["checkpoints"] if c["step"] == report["best_step"])
print(f"  {name:<14} step {best['step']:>5} of {report.get('steps', '?'):>5}  score {best['score']:.4f}  "
      f"sentiment {best['sentiment_f1']:.4f}  emotion {best['emotion_f1']:.4f}  NER {best['ner_f1']:.4f}  "
      f"{best['seconds_per_step']:.3f} s/step")
EOF
done
exit $failed
