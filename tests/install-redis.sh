#!/usr/bin/env bash
# Makes sure a redis-server binary is on PATH, installing Debian's package when missing.
# The tests and the demo start their own throwaway servers from it; nothing is left running.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server not found: installing Debian's redis-server package" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a system service; our tests never use it, so leave it as it is.
command -v redis-server >/dev/null
