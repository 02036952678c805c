#!/usr/bin/env bash
# Everything murmur needs on a fresh machine, in order: system packages, models/libtorch/data/broker binary,
# Postgres with murmur's database, the Kafka-protocol broker. Each step is idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/system-deps.sh"
"$here/fetch-assets.sh"
"$here/postgres.sh"
"$here/kafka.sh" start
