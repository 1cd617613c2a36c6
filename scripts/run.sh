#!/usr/bin/env bash
# Set up (system packages, Rust), build, and open the sameframe capture station.
# Without a camera the station falls back to the replay camera; without a store it offers to
# create one. Extra arguments go to `sameframe` (e.g. `scripts/run.sh patient list`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked
exec target/release/sameframe "$@"
