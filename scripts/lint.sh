#!/usr/bin/env bash
# Formatting and clippy, as kept clean on every change.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
