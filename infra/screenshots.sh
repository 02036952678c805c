#!/usr/bin/env bash
# Retakes the README's dashboard screenshots (docs/screenshots/) from a running `murmur demo` (infra/demo.sh)
# once its corpus has loaded: the last week by the hour for one brand, and the side panel of that brand's
# biggest spike, opened through the address as a click on its mark opens it.
# Usage: MURMUR_KEY=<the key the demo printed> infra/screenshots.sh [base URL, default http://127.0.0.1:8080]
#        [brand tag, default google]
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-http://127.0.0.1:8080}"
brand="${2:-google}"
key="${MURMUR_KEY:?set MURMUR_KEY to the API key murmur demo printed (dashboard up: …/#key=KEY)}"
out=docs/screenshots
mkdir -p "$out"

shot() { # name window-height url
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars \
    --window-size=1400,"$2" --virtual-time-budget=30000 --screenshot="$out/$1.png" "$3" 2>/dev/null
  echo "[screenshots] $out/$1.png"
}

if ! curl -fsS "$base/readyz" > /dev/null; then
  echo "[screenshots] nothing answers on $base: start the demo first (infra/demo.sh)" >&2
  exit 1
fi
view="key=$key&range=7d&focus=tag:$brand"
shot dashboard 2050 "$base/#$view"

panel=$(python3 - "$base" "$brand" "$key" <<'PY'
import json, sys, urllib.parse, urllib.request
from datetime import datetime, timedelta, timezone
base, brand, key = sys.argv[1], sys.argv[2], sys.argv[3]
now = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
query = {"tag": brand, "bucket": "hour", "examples": "0",
         "from": (now - timedelta(days=7)).isoformat(), "to": now.isoformat()}
request = urllib.request.Request(f"{base}/v1/trends/spikes?{urllib.parse.urlencode(query)}",
                                 headers={"X-API-Key": key})
with urllib.request.urlopen(request) as answer:
    body = json.load(answer)
if not body["spikes"]:
    sys.exit(f"no spike for tag:{brand} in the last 7 days")
spike = max(body["spikes"], key=lambda s: s["z"])
starts = [p["start"] for p in body["timeline"]["points"]]
at = starts.index(spike["peak"])
end = starts[at + 1] if at + 1 < len(starts) else body["timeline"]["to"]
comments = {"tag": brand, "from": spike["peak"], "to": end}
if spike["kind"] == "negative_share":
    comments["sentiment"] = "negative"
when = spike["peak"][:16].replace("T", " ")
title = f"Spike {when}: {spike['value']:.0f} comments against {spike['baseline']:.0f} usually" \
    if spike["kind"] == "volume" else f"Spike {when}: {spike['value']:.0%} negative"
print(urllib.parse.urlencode({"comments": urllib.parse.urlencode(comments), "title": title}))
PY
)
shot dashboard-spike 1000 "$base/#$view&$panel"
