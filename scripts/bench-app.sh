#!/usr/bin/env bash
# The station's frame-time benchmark: the release binary in a real 1920×1080 window under Xvfb
# (Mesa's software renderer), the demo replay camera at 30 fps with 1080p frames, all overlays
# on, a baseline loaded so lighting AND pose run live. Prints the frame-time histogram, the
# guidance rate and resident memory at the start and the end.
#
# Usage: scripts/bench-app.sh [--frames N | --seconds S] [--size WxH] [-- EXTRA APP ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
frames=1200 seconds="" size=1920x1080 extra=()
while (($#)); do
  case "$1" in
    --frames) frames="$2"; shift 2 ;;
    --seconds) seconds="$2"; frames=""; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/setup-debian.sh --gui
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked
bin="$(realpath "$target/release/sameframe")"
work="$(mktemp -d)"
trap 'kill ${xvfb_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
export LIBGL_ALWAYS_SOFTWARE=1
# shellcheck source=station-fixture.sh
source scripts/station-fixture.sh
start_xvfb "$size"
args=(app --demo --fps "${fps:-30}" --window "$size" --patient SMOKE-1 --protocol face --visit "$visit")
if [[ -n "$seconds" ]]; then args+=(--bench-seconds "$seconds"); else args+=(--bench-frames "$frames"); fi
"$bin" "${args[@]}" "${extra[@]}" --bench-out "$work/report.json"
cat "$work/report.json"
