#!/usr/bin/env bash
# Set up (system packages, Rust) and run the whole test suite: unit, integration, CLI, GUI
# (egui_kittest), and a real window under Xvfb screenshotted and checked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh --gui
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo test --locked --workspace
if [[ -x scripts/gui-smoke.sh ]]; then
  scripts/gui-smoke.sh
fi
echo "all tests passed"
