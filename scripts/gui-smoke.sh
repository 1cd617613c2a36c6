#!/usr/bin/env bash
# Start the real station binary in a real window under Xvfb (Mesa's software OpenGL) with the
# replay camera, at the window sizes of clinic laptops and desktops, take a screenshot of each,
# and fail if the app exited or the window is blank. Screenshots are kept in
# $TARGET/gui-smoke/ for a person to look at.
#
# Usage: scripts/gui-smoke.sh [path/to/sameframe]   (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="$(realpath "${1:-$target/debug/sameframe}")"
[[ -x "$bin" ]] || { cargo build --locked; bin="$(realpath "$target/debug/sameframe")"; }
out="$(realpath -m "$target/gui-smoke")"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export LIBGL_ALWAYS_SOFTWARE=1
# shellcheck source=station-fixture.sh
source scripts/station-fixture.sh

status=0
for size in 1366x768 1920x1080; do
  start_xvfb "$size"
  pids+=("$xvfb_pid")
  "$bin" app --demo --window "$size" \
    --patient SMOKE-1 --protocol face --visit "$visit" >"$out/app-$size.log" 2>&1 &
  app=$!
  pids+=("$app")
  # Long enough for the first frames, the baseline, and the live analysis.
  sleep "${SMOKE_WAIT:-15}"
  shot="$out/station-$size.png"
  if ! kill -0 "$app" 2>/dev/null; then
    echo "gui-smoke: the app exited at $size:" >&2
    cat "$out/app-$size.log" >&2
    status=1
  else
    import -window root "$shot"
    sd=$(convert "$shot" -colorspace Gray -format "%[fx:standard_deviation]" info:)
    colours=$(convert "$shot" -format "%k" info:)
    echo "gui-smoke: $size: $shot (grey std-dev $sd, $colours colours)"
    if ! awk -v s="$sd" -v c="$colours" 'BEGIN { exit !(s > 0.05 && c > 500) }'; then
      echo "gui-smoke: the window at $size looks blank" >&2
      status=1
    fi
    kill "$app"
    wait "$app" 2>/dev/null || true
  fi
  kill "$xvfb_pid" 2>/dev/null || true
  wait "$xvfb_pid" 2>/dev/null || true
done
exit $status
