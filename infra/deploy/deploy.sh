#!/usr/bin/env bash
# Deploy a revision on a host installed as in docs/deploy.md:
#   test it, migrate, restart every unit, check health; roll back the code if health fails.
# Usage: deploy.sh [REV]   (default: origin/main)
# Environment: APP_DIR (/opt/catalytic), ENV_FILE (/etc/catalytic/catalytic.env),
#   SKIP_TESTS=1 to skip `make test`, SYSTEMCTL (systemctl), HEALTH_URL (http://127.0.0.1:8000).
set -euo pipefail

APP_DIR=${APP_DIR:-/opt/catalytic}
ENV_FILE=${ENV_FILE:-/etc/catalytic/catalytic.env}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
HEALTH_URL=${HEALTH_URL:-http://127.0.0.1:8000}
REV=${1:-origin/main}
here=$(cd "$(dirname "$0")" && pwd)

cd "$APP_DIR"
git fetch --quiet --all --tags || true
previous=$(git rev-parse HEAD)
target=$(git rev-parse "$REV")
echo "deploy: $previous -> $target"
mkdir -p .deploy
echo "$previous" > .deploy/previous

git checkout --quiet --detach "$target"
make venv >/dev/null
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    echo "deploy: running the test suite"
    make test
fi

# The env file is the host's, not in the repository.
set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
echo "deploy: migrating"
.venv/bin/catalytic migrate

echo "deploy: restarting"
$SYSTEMCTL restart catalytic.target

if ! "$here/check-health.sh" "$HEALTH_URL"; then
    echo "deploy: health check failed, rolling back to $previous" >&2
    "$here/rollback.sh"
    exit 1
fi
echo "$target" > .deploy/current
echo "deploy: $target is live"
