#!/usr/bin/env bash
# The README's demo command: installs redis-server if needed (unless REDIS_URL points at a
# server of yours), then runs the demo, which starts a throwaway server when REDIS_URL is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${REDIS_URL:-}" ]; then
  bash tests/install-redis.sh
fi
cargo run --quiet --release -p redis-locked-examples --example demo
