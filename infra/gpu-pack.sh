#!/usr/bin/env bash
# Here, before training on a lent GPU machine (never in CI): fills .gpu/ (ignored) with what infra/gpu-fit.sh
# needs there, small enough for the 64 MiB the working tree may carry: the encoder, and a teacher task model
# if one is named, as float16 byte planes + xz (infra/f16_planes.py), the training data as one tar.xz, and a
# stripped murmur-train.
#
#   infra/gpu-pack.sh [TEACHER_DIR]    e.g. infra/gpu-pack.sh models/enrichment
#
# Then call the machine with `.gpu` carried and `infra/gpu-fit.sh 'NAME FIT-FLAGS…' …` as the command, with
# the committed weights untracked for that call (`git rm --cached models/enrichment/model.safetensors`, and
# `git reset -q models/enrichment/model.safetensors` afterwards): they alone are 18 MB. Needs numpy (a venv
# in .cache/numpy-venv is made if MURMUR_NUMPY_PYTHON does not name a Python that has it) and
# target/release/murmur-train. Sizes (2026-12-04): encoder 38.7 MB, data 13.0 MB, murmur-train 3.5 MB, a
# two-block teacher 7.7 MB (fits), the three-block model now committed 10.8 MB (1 MiB over: the script stops).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[gpu-pack] %s\n' "$*"; }
die() { printf '[gpu-pack] error: %s\n' "$*" >&2; exit 1; }

teacher=${1:-}
encoder=${MURMUR_MODEL_DIR:-.cache/models/all-MiniLM-L6-v2}
shared=${MURMUR_SHARED_DATA:-../shared/data}
[ -x target/release/murmur-train ] || die "no target/release/murmur-train: cargo build --release -p murmur-train"
[ -f "$encoder/model.safetensors" ] || die "no encoder in $encoder: run infra/fetch-assets.sh"
[ -d .cache/data/conll2003 ] || die "no .cache/data: run infra/fetch-assets.sh"
[ -d "$shared/goemotions" ] || die "no shared data in $shared (set MURMUR_SHARED_DATA)"
[ -z "$teacher" ] || [ -f "$teacher/model.safetensors" ] || die "no task model in $teacher"
PY=${MURMUR_NUMPY_PYTHON:-.cache/numpy-venv/bin/python}
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  say "installing numpy into .cache/numpy-venv"
  python3 -m venv .cache/numpy-venv && .cache/numpy-venv/bin/pip install -q numpy
  PY=.cache/numpy-venv/bin/python
fi

rm -rf .gpu && mkdir -p .gpu/encoder .gpu/stage
planes() { "$PY" infra/f16_planes.py pack "$1" .gpu/stage/planes && xz -T0 -9 -c .gpu/stage/planes >"$2"; }
say "encoder $encoder"
(cd "$encoder" && tar -cf - --exclude=model.safetensors --exclude=README.md --exclude=.gitattributes .) | tar -x -C .gpu/encoder
planes "$encoder/model.safetensors" .gpu/encoder.planes.xz
if [ -n "$teacher" ]; then
  say "teacher $teacher"
  mkdir -p .gpu/teacher && cp "$teacher/model.json" .gpu/teacher/
  planes "$teacher/model.safetensors" .gpu/teacher.planes.xz
fi
say "data: .cache/data and $shared"
mkdir -p .gpu/stage/shared
for set in goemotions uci_sentiment_sentences broad_twitter_corpus; do ln -s "$(realpath "$shared/$set")" .gpu/stage/shared/$set; done
ln -s "$(realpath .cache/data)" .gpu/stage/data
tar -C .gpu/stage -chf - data shared | xz -T0 -9 >.gpu/data.tar.xz
strip -o .gpu/stage/murmur-train target/release/murmur-train && xz -T0 -9 -c .gpu/stage/murmur-train >.gpu/murmur-train.xz
rm -rf .gpu/stage
carried=$(du -sb .gpu | cut -f1)
tracked=$(git ls-files -z | grep -zv '^models/enrichment/model.safetensors$' | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$(( (carried + tracked) / 1048576 ))
say "$(( carried / 1048576 )) MiB in .gpu + $(( tracked / 1048576 )) MiB tracked (without the committed weights) = $total of 64 MiB"
[ "$total" -lt 64 ] || die "over the 64 MiB a call may carry: leave something out (a smaller teacher, or fewer data)"
