# Sourced by gui-smoke.sh and bench-app.sh: a temp store with a patient, a consent, a visit and a
# frontal baseline from the demo sequence, so the station opens on a live follow-up comparison.
# Needs: $bin (the sameframe binary) and $work (a temp folder). Sets $visit.
export SAMEFRAME_DATA_DIR="$work/data" SAMEFRAME_KEY_FILE="$work/store.key"
export SAMEFRAME_ACTOR="station-fixture" HOME="$work/home" XDG_DATA_HOME="$work/home/data"
mkdir -p "$HOME"
sf() { "$bin" --json "$@"; }
field() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*: *"\(.*\)"/\1/'; }
sf init >/dev/null
sf patient add --ref SMOKE-1 >/dev/null
consent=$(sf consent grant --patient SMOKE-1 --scope clinical,publication --signed-by SMOKE-1 --signed-on 2026-01-05 | field consent_id)
visit=$(sf visit add --patient SMOKE-1 --area face --product Profhilo --lot L2311 | field visit_id)
sf camera demo-frames --out "$work/frames" >/dev/null
sf capture import "$work/frames/demo-03.png" --patient SMOKE-1 --consent "$consent" \
  --area face --view frontal --visit "$visit" >/dev/null

# Start Xvfb on a free display at $1 (WxH); sets $DISPLAY and $xvfb_pid.
start_xvfb() {
  local n
  for n in $(seq 91 140); do
    [[ -e "/tmp/.X11-unix/X$n" || -e "/tmp/.X$n-lock" ]] && continue
    Xvfb ":$n" -screen 0 "${1}x24" -nolisten tcp >"$work/xvfb-$n.log" 2>&1 &
    xvfb_pid=$!
    export DISPLAY=":$n"
    for _ in $(seq 50); do
      xdpyinfo >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    kill "$xvfb_pid" 2>/dev/null || true
  done
  echo "could not start Xvfb" >&2
  return 1
}
