#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-redis.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every test binary runs even when one fails, so one run shows every failure.
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
# The attribute's expansion stays warning-free under clippy's pedantic lints:
# tests/tests/lint_clean.rs denies them, and clippy is what checks them.
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --quiet -p redis-locked-tests --test lint_clean
else
  echo "clippy is not installed: skipping the pedantic check of tests/tests/lint_clean.rs" >&2
fi
# Both published crates package, and build from their packaged sources alone.
cargo package --quiet --allow-dirty -p redis-locked-macros -p redis-locked
# One closing line for the whole run (cargo prints one per test binary, the last often empty).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
