#!/usr/bin/env bash
# Start a Kafka-protocol broker (tansu, fetched by fetch-assets.sh) on 127.0.0.1, in memory, in the
# background. Idempotent: does nothing when something already answers on the port.
#   infra/kafka.sh [start|stop]     MURMUR_KAFKA_PORT (9092)
# Any real Kafka cluster works instead: point MURMUR_KAFKA_BROKERS at it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MURMUR_CACHE:-$ROOT/.cache}
PORT=${MURMUR_KAFKA_PORT:-9092}
# One pid and log file per port, so stopping one broker never stops another.
TANSU="$CACHE/bin/tansu"; PIDFILE="$CACHE/tansu-$PORT.pid"; LOG="$CACHE/tansu-$PORT.log"
say() { printf '[kafka] %s\n' "$*"; }
die() { printf '[kafka] error: %s\n' "$*" >&2; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

case "${1:-start}" in
  stop)
    if [ -f "$PIDFILE" ] && kill "$(cat "$PIDFILE")" 2>/dev/null; then say "stopped"; else say "not running"; fi
    rm -f "$PIDFILE"; exit 0 ;;
  start) ;;
  *) die "usage: $0 [start|stop]" ;;
esac

if listening; then say "a broker already answers on 127.0.0.1:$PORT"; exit 0; fi
[ -x "$TANSU" ] || die "$TANSU missing: run infra/fetch-assets.sh first"
say "starting tansu on 127.0.0.1:$PORT (log: $LOG)"
nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 50); do listening && break; sleep 0.2; done
listening || { tail -n 20 "$LOG" >&2; die "tansu did not start"; }
say "broker up: 127.0.0.1:$PORT"
