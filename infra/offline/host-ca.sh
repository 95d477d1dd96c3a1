#!/usr/bin/env bash
# Copy this machine's locally added CA certificates into infra/certs/ (the image's optional extra
# CAs), so pip inside `docker build` trusts a TLS-intercepting proxy the way the host does.
# Sources: /usr/local/share/ca-certificates/*.crt (Debian's place for local CAs) and the PEM file
# in CATALYTIC_EXTRA_CA, if set. Files are only rewritten when their content changed (build cache).
set -euo pipefail
certs="$(cd "$(dirname "${BASH_SOURCE[0]}")/../certs" && pwd)"
copied=0
for src in /usr/local/share/ca-certificates/*.crt ${CATALYTIC_EXTRA_CA:+"$CATALYTIC_EXTRA_CA"}; do
  [ -f "$src" ] || continue
  dest="$certs/host-$(basename "${src%.*}").crt"
  cmp -s "$src" "$dest" || cp "$src" "$dest"
  copied=$((copied + 1))
done
echo "extra CA certificates for image builds: $copied in infra/certs/"
