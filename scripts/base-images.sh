#!/usr/bin/env bash
# Build the base images the built-in specs use, from Debian packages, when an engine lacks
# them. For machines with no registry access; skipped for images already present.
#   python:3.11-slim, python:3.11  Debian python3 + pip + venv, with the host's CA bundle
#   golang:1.19                    Debian golang toolchain (go spec builder stage)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${APPYARD_IMAGE_CACHE:-/var/cache/appyard-images}
. /etc/os-release
SUITE=${VERSION_CODENAME:-bookworm}
MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* \
  2>/dev/null | grep -v security | awk 'NR==1{print $2}' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

engines=()
command -v podman >/dev/null && podman info >/dev/null 2>&1 && engines+=(podman)
command -v docker >/dev/null && docker info >/dev/null 2>&1 && engines+=(docker)
[ ${#engines[@]} -gt 0 ] || { echo "no container engine answers; skipping base images"; exit 0; }

BASE_REV=2  # bump when what goes into the images changes; older imports are replaced
has_image() {
  [ "$("$1" image inspect --format '{{index .Config.Labels "dev.appyard.base"}}' "$2" \
    2>/dev/null)" = "$BASE_REV" ]
}

# rootfs_tar NAME PACKAGES: a cached tarball of a debootstrapped Debian with those packages
rootfs_tar() {
  local name=$1 pkgs=$2 tar="$CACHE/$1-$SUITE.tar"
  if [ ! -f "$tar" ]; then
    echo "building $name rootfs from Debian packages ($SUITE)" >&2
    local dir; dir=$(mktemp -d /var/tmp/appyard-rootfs.XXXXXX)
    debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$dir" "$MIRROR" >/dev/null
    # Images that pip-install must trust the same CAs as the host (TLS-intercepting proxies).
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    mkdir -p "$CACHE"
    tar -C "$dir" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  echo "$tar"
}

# ensure_image REF ROOTFS_NAME PACKAGES CHANGES...
ensure_image() {
  local ref=$1 name=$2 pkgs=$3; shift 3
  local engine tar changes=(--change "LABEL dev.appyard.base=$BASE_REV")
  for c in "$@"; do changes+=(--change "$c"); done
  for engine in "${engines[@]}"; do
    has_image "$engine" "$ref" && continue
    tar=$(rootfs_tar "$name" "$pkgs")
    echo "importing $ref into $engine"
    "$engine" import "${changes[@]}" "$tar" "$ref" >/dev/null 2>&1 \
      || "$engine" import "${changes[@]}" "$tar" "$ref"
  done
}

# Tools inside builds use the image's CA bundle (a copy of the host's), not their own.
CA=/etc/ssl/certs/ca-certificates.crt
CA_ENV=("ENV SSL_CERT_FILE=$CA" "ENV PIP_CERT=$CA" "ENV REQUESTS_CA_BUNDLE=$CA"
        "ENV PIP_DEFAULT_TIMEOUT=180")
PY_PKGS=python3,python3-pip,python3-venv,ca-certificates
for ref in docker.io/library/python:3.11-slim docker.io/library/python:3.11; do
  ensure_image "$ref" python "$PY_PKGS" 'ENV PYTHONUNBUFFERED=1' \
    'ENV PIP_BREAK_SYSTEM_PACKAGES=1' "${CA_ENV[@]}" 'CMD ["python3"]'
done
ensure_image docker.io/library/golang:1.19 golang golang-go,ca-certificates,git \
  'ENV GOPATH=/go' 'ENV PATH=/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "${CA_ENV[@]}" 'CMD ["go"]'
