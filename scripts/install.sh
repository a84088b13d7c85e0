#!/usr/bin/env bash
# Install what appyard needs on a Debian/Ubuntu host, idempotently.
#   scripts/install.sh          run-time needs: git, podman (runc), Python venv with appyard
#   scripts/install.sh --test   also: docker, debootstrap, wrk, nginx, chromium; dockerd started;
#                               offline base images built from Debian packages
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}

need_pkgs=(git podman runc catatonit uidmap slirp4netns debootstrap ca-certificates python3-venv)
if [ "$MODE" = "--test" ]; then
  need_pkgs+=(docker.io tini wrk nginx-light chromium chromium-driver golang-go procps)
fi

missing=()
for p in "${need_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Rootful podman on hosts with hybrid cgroups: runc works where crun fails, and container
# ulimits must not exceed the host's hard limits.
conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && ! grep -q '# appyard' "$conf" 2>/dev/null; then
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  mkdir -p /etc/containers
  cat > "$conf" <<CONF
# appyard: written by scripts/install.sh
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
CONF
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=""; [ "$MODE" = "--test" ] && extras="[test]"
stamp=".venv/.installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".$extras"
  touch "$stamp"
fi

if [ "$MODE" = "--test" ]; then
  scripts/start-dockerd.sh
fi
scripts/base-images.sh
