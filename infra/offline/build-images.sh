#!/usr/bin/env bash
# Build local stand-ins for the official images compose.yaml uses, with no registry at all:
# debootstrap a Debian bookworm root (with Python, which two of the four need), `docker import`
# it, and build small python, postgres, redis and mail-catcher (Mailpit) images on it from
# Debian packages. Tags: images.env.
#
#   infra/offline/build-images.sh [--rebuild]
#
# Images that exist and were built from the current files are kept (the build is skipped),
# and the debootstrapped root is cached as a tarball, so a second run takes a second or two.
# Needs root (debootstrap), debootstrap, a Docker engine and the Debian mirror (plain http).
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   CATALYTIC_OFFLINE_CACHE where the root tarball is kept (default /var/cache/catalytic-offline)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${CATALYTIC_OFFLINE_CACHE:-/var/cache/catalytic-offline}"
rebuild=0
case "${1:-}" in
  --rebuild) rebuild=1 ;;
  "") ;;
  *) echo "usage: $0 [--rebuild]" >&2; exit 2 ;;
esac

# shellcheck source=images.env
. "$here/images.env"

say() { printf 'offline images: %s\n' "$*"; }

exists() { docker image inspect "$1" >/dev/null 2>&1; }

label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

# A digest of a stand-in's build files: a changed Dockerfile or script means a rebuild.
context_digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

build_base() {
  if [ "$rebuild" = 0 ] && exists "$DEBIAN_IMAGE"; then
    say "$DEBIAN_IMAGE is there"
    return
  fi
  # Installed by debootstrap itself: the python and mailpit stand-ins need no apt run of their own.
  local base_packages=ca-certificates,netbase,tzdata,python3,python3-venv,python3-aiosmtpd
  local tarball="$cache/bookworm-$(echo "$base_packages" | sha256sum | cut -c1-8).tar"
  if [ "$rebuild" = 1 ] || [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
    mkdir -p "$cache"
    local root="$cache/rootfs.tmp"
    rm -rf "$root"
    say "debootstrap bookworm from $mirror (a minute or two) …"
    debootstrap --variant=minbase --include="$base_packages" bookworm "$root" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # The same apt setup as the official debian image: updates and security too, no caches kept.
    local security="${mirror%/debian}/debian-security"
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
    echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  say "importing $tarball as $DEBIAN_IMAGE"
  docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    --change "LABEL catalytic.offline.digest=$(sha256sum "$tarball" | cut -c1-16)" \
    "$tarball" "$DEBIAN_IMAGE" >/dev/null
}

# build_standin TAG DIR BASE: docker build DIR on BASE unless TAG was built from these very files.
build_standin() {
  local tag="$1" dir="$here/$2" base="$3" digest base_id
  digest="$(context_digest "$dir")"
  base_id="$(docker image inspect -f '{{.Id}}' "$base")"
  if [ "$rebuild" = 0 ] && exists "$tag" \
    && [ "$(label "$tag" catalytic.offline.digest)" = "$digest" ] \
    && [ "$(label "$tag" catalytic.offline.base)" = "$base_id" ]; then
    say "$tag is there"
    return
  fi
  say "building $tag …"
  local log="$cache/build-$2.log"
  mkdir -p "$cache"
  if ! docker build --build-arg "BASE_IMAGE=$base" \
    --label "catalytic.offline.digest=$digest" --label "catalytic.offline.base=$base_id" \
    -t "$tag" "$dir" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "building $tag failed; full log: $log" >&2
    exit 1
  fi
}

start=$SECONDS
build_base
build_standin "$PYTHON_IMAGE" python "$DEBIAN_IMAGE"
build_standin "$POSTGRES_IMAGE" postgres "$DEBIAN_IMAGE"
build_standin "$REDIS_IMAGE" redis "$DEBIAN_IMAGE"
build_standin "$MAILPIT_IMAGE" mailpit "$PYTHON_IMAGE"
say "ready in $((SECONDS - start)) s: $PYTHON_IMAGE $POSTGRES_IMAGE $REDIS_IMAGE $MAILPIT_IMAGE"
