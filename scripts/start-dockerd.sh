#!/usr/bin/env bash
# Start dockerd in the background when it is installed and not yet answering.
set -euo pipefail
command -v dockerd >/dev/null || exit 0
docker info >/dev/null 2>&1 && exit 0
echo "starting dockerd"
setsid dockerd >/var/log/appyard-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not start; see /var/log/appyard-dockerd.log" >&2
exit 1
