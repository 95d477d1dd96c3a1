#!/usr/bin/env bash
# Put the previously deployed revision back (code only: migrations are forward-only, so every
# migration must keep the previous release working — expand first, contract a release later).
set -euo pipefail

APP_DIR=${APP_DIR:-/opt/catalytic}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
HEALTH_URL=${HEALTH_URL:-http://127.0.0.1:8000}
here=$(cd "$(dirname "$0")" && pwd)

cd "$APP_DIR"
previous=$(cat .deploy/previous 2>/dev/null || true)
if [ -z "$previous" ]; then
    echo "rollback: no previous deployment recorded in $APP_DIR/.deploy/previous" >&2
    exit 1
fi
echo "rollback: back to $previous"
git checkout --quiet --detach "$previous"
make venv >/dev/null
$SYSTEMCTL restart catalytic.target
"$here/check-health.sh" "$HEALTH_URL"
echo "$previous" > .deploy/current
echo "rollback: $previous is live"
