#!/usr/bin/env bash
# Makes sure redis-server and redis-cli are on PATH, installing Debian's packages when missing.
# The tests and the demo start their own throwaway servers from it; nothing is left running.
# redis-cli (the cluster tests create their cluster with it) is in redis-tools, which
# redis-server depends on.
set -euo pipefail
packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
echo "${packages[*]} not found: installing Debian's package(s)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# The package may start a system service; our tests never use it, so leave it as it is.
command -v redis-server >/dev/null
command -v redis-cli >/dev/null
