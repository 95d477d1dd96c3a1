#!/usr/bin/env bash
# Wait until the gateway answers /health and /ready (default: 60 s).
set -euo pipefail
url=${1:-http://127.0.0.1:8000}
deadline=$(( $(date +%s) + ${HEALTH_TIMEOUT:-60} ))
while :; do
    if curl -fsS --max-time 2 "$url/health" >/dev/null && curl -fsS --max-time 3 "$url/ready" >/dev/null; then
        echo "health: $url is healthy"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "health: $url did not become healthy" >&2
        exit 1
    fi
    sleep 1
done
