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
bin="${1:-$target/debug/sameframe}"
[[ -x "$bin" ]] || cargo build --locked
out="$target/gui-smoke"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

export SAMEFRAME_DATA_DIR="$work/data" SAMEFRAME_KEY_FILE="$work/store.key"
export SAMEFRAME_ACTOR="smoke-test" HOME="$work/home" XDG_DATA_HOME="$work/home/data"
export LIBGL_ALWAYS_SOFTWARE=1
mkdir -p "$HOME"
sf() { "$bin" --json "$@"; }
field() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*: *"\(.*\)"/\1/'; }

# A patient with consent, a visit and a frontal baseline from the demo sequence.
sf init >/dev/null
sf patient add --ref SMOKE-1 >/dev/null
consent=$(sf consent grant --patient SMOKE-1 --scope clinical,publication --signed-by SMOKE-1 --signed-on 2026-01-05 | field consent_id)
visit=$(sf visit add --patient SMOKE-1 --area face --product Profhilo --lot L2311 | field visit_id)
sf camera demo-frames --out "$work/frames" >/dev/null
sf capture import "$work/frames/demo-03.png" --patient SMOKE-1 --consent "$consent" \
  --area face --view frontal --visit "$visit" >/dev/null

status=0
display=91
for size in 1366x768 1920x1080; do
  display=$((display + 1))
  Xvfb ":$display" -screen 0 "${size}x24" -nolisten tcp >"$out/xvfb-$size.log" 2>&1 &
  xvfb=$!
  pids+=("$xvfb")
  for _ in $(seq 50); do
    DISPLAY=":$display" xdpyinfo >/dev/null 2>&1 && break
    sleep 0.1
  done
  DISPLAY=":$display" "$bin" app --demo --window "$size" \
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
    DISPLAY=":$display" import -window root "$shot"
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
  kill "$xvfb" 2>/dev/null || true
  wait "$xvfb" 2>/dev/null || true
done
exit $status
