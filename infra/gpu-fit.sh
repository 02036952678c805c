#!/usr/bin/env bash
# There, on a lent GPU machine, with .gpu/ carried (infra/gpu-pack.sh made it): unpacks the encoder, the data,
# murmur-train and the teacher if one was packed (then every variant is trained with it: MURMUR_NEWS_TEACHER),
# trains the variants side by side (infra/gpu-train.sh, same arguments), and leaves each variant's folder
# and log in $OUT as NAME.tar.xz.part-aa, -ab, … (15 MiB pieces: the most a file can bring back is 16 MiB).
# Here: cat NAME.tar.xz.part-* | xz -dc | tar -x.
#
#   infra/gpu-fit.sh 'NAME FIT-FLAGS…' ['NAME FIT-FLAGS…' …]
set -euo pipefail
cd "$(dirname "$0")/.."
die() { printf '[gpu-fit] error: %s\n' "$*" >&2; exit 1; }
[ -f .gpu/encoder.planes.xz ] || die "no .gpu/: run infra/gpu-pack.sh here and carry .gpu"
[ -n "${OUT:-}" ] || die "OUT is not set: this runs on the lent machine, whose files come back from \$OUT"
work=/tmp/gpu-fit
rm -rf "$work" && mkdir -p "$work/encoder"
cp -r .gpu/encoder/. "$work/encoder/"
xz -dc .gpu/encoder.planes.xz >"$work/planes" && python3 infra/f16_planes.py unpack "$work/planes" "$work/encoder/model.safetensors"
if [ -f .gpu/teacher.planes.xz ]; then
  mkdir -p "$work/teacher" && cp .gpu/teacher/model.json "$work/teacher/"
  xz -dc .gpu/teacher.planes.xz >"$work/planes" && python3 infra/f16_planes.py unpack "$work/planes" "$work/teacher/model.safetensors"
  export MURMUR_NEWS_TEACHER="$work/teacher"
fi
xz -dc .gpu/data.tar.xz | tar -x -C "$work"
xz -dc .gpu/murmur-train.xz >"$work/murmur-train" && chmod +x "$work/murmur-train"
# The encoder folder's name is the encoder id the model records and the worker checks.
mkdir -p "$work/models" && mv "$work/encoder" "$work/models/all-MiniLM-L6-v2"
export MURMUR_MODEL_DIR="$work/models/all-MiniLM-L6-v2" MURMUR_DATA_CACHE="$work/data" \
  MURMUR_SHARED_DATA="$work/shared" MURMUR_TRAIN_BIN="$work/murmur-train"
status=0
infra/gpu-train.sh "$work/fits" "$@" 2>&1 | tee "$OUT/train.log" || status=$?
for log in "$work"/fits/*.log; do
  [ -e "$log" ] || continue
  name=$(basename "$log" .log)
  cp "$log" "$work/fits/$name/" 2>/dev/null || true
  tar -C "$work/fits" -cf - "$name" | xz -T0 -6 | split -b 15M - "$OUT/$name.tar.xz.part-"
done
exit $status
