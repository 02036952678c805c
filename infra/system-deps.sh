#!/usr/bin/env bash
# Debian packages murmur's build needs beyond a Rust toolchain, gcc and Python: cmake (librdkafka is built
# from source by rdkafka's cmake-build), libcurl headers, unzip (unpacking wheels); chromium for the tests that
# render reports and the dashboard in a headless browser; python3-venv for the API fuzzer (schemathesis); wrk for
# the load benchmark (infra/load-test.sh). `--demo` installs only what building and running the demo needs.
# Idempotent.
set -euo pipefail
say() { printf '[system-deps] %s\n' "$*"; }
packages=(cmake libcurl4-openssl-dev unzip pkg-config)
case "${1:-}" in
  --demo) ;;
  "") packages+=(chromium python3-venv wrk) ;;
  *) echo "[system-deps] error: unknown argument $1 (expected --demo or nothing)" >&2; exit 2 ;;
esac
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then say "all present"; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "[system-deps] error: need root to install ${missing[*]}" >&2; exit 1; }
say "installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
say "installed"
