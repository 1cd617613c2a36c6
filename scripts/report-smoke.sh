#!/usr/bin/env bash
# Render the compliance review's HTML report in headless Chromium, at a desk width (1400 px)
# and a phone width (390 px), from a temp store and a folder of published images with planted
# problems (a before/after, a swapped pair without caption, an image without publication
# consent, an image with no source). Fail if Chromium cannot render it or a page is blank.
# Screenshots are kept in $TARGET/report-smoke/ for a person to look at.
#
# Usage: scripts/report-smoke.sh [path/to/sameframe]   (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="$(realpath "${1:-$target/debug/sameframe}")"
[[ -x "$bin" ]] || { cargo build --locked; bin="$(realpath "$target/debug/sameframe")"; }
chrome="$(command -v chromium || command -v chromium-browser || true)"
[[ -n "$chrome" ]] || { echo "report-smoke: chromium is not installed (scripts/setup-debian.sh --gui)" >&2; exit 1; }
out="$(realpath -m "$target/report-smoke")"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SAMEFRAME_DATA_DIR="$work/data" SAMEFRAME_KEY_FILE="$work/store.key"
export SAMEFRAME_ACTOR="report-smoke" HOME="$work/home"
mkdir -p "$HOME" "$work/pub"
sf() { "$bin" --json "$@"; }
field() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*: *"\(.*\)"/\1/'; }

# Photos: the shared fixtures' faces when present, else the demo camera's frames.
faces="../shared/fixtures/faces"
if [[ -f "$faces/obama.jpg" && -f "$faces/biden.jpg" ]]; then
  before="$faces/obama.jpg"; other="$faces/biden.jpg"
else
  sf camera demo-frames --out "$work/frames" >/dev/null
  before="$work/frames/demo-01.png"; other="$work/frames/demo-05.png"
fi
convert -quiet "$before" -modulate 104,96 -quality 92 "$work/after.jpg"

sf init >/dev/null
sf patient add --ref P-0101 >/dev/null
sf patient add --ref P-0102 >/dev/null
c1=$(sf consent grant --patient P-0101 --scope clinical,publication --signed-by P-0101 \
  --signed-on 2026-01-05 | field consent_id)
c2=$(sf consent grant --patient P-0102 --scope clinical --signed-by P-0102 \
  --signed-on 2026-01-05 | field consent_id)
sf capture import "$before" --patient P-0101 --consent "$c1" --area face --view frontal \
  --captured-at 2026-03-10T10:00:00 >/dev/null
sf capture import "$work/after.jpg" --patient P-0101 --consent "$c1" --area face \
  --view frontal --captured-at 2026-05-10T10:30:00 --confounder makeup_present=foundation >/dev/null
sf capture import "$other" --patient P-0102 --consent "$c2" --area face --view frontal \
  --captured-at 2026-04-01T10:00:00 >/dev/null

convert -quiet "$before" "$work/after.jpg" -resize x480 +append -quality 85 "$work/pub/before-after.jpg"
echo "Two sessions of skin booster. Individual results vary. Make-up (foundation) worn after." \
  >"$work/pub/before-after.txt"
convert -quiet "$work/after.jpg" "$before" -resize x400 +append -quality 80 "$work/pub/swapped.jpg"
convert -quiet "$other" -resize 600x -quality 85 "$work/pub/no-consent.jpg"
convert -quiet -size 640x420 plasma:fractal -quality 85 "$work/pub/unknown.jpg"

sf review "$work/pub" --report "$out/report.html" >"$out/review.json"

status=0
for size in 1400x2600 390x4200; do
  shot="$out/report-$size.png"
  "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="${size/x/,}" --screenshot="$shot" "file://$out/report.html" \
    >"$out/chromium-$size.log" 2>&1 || true
  if [[ ! -s "$shot" ]]; then
    echo "report-smoke: Chromium made no screenshot at $size:" >&2
    cat "$out/chromium-$size.log" >&2
    status=1
    continue
  fi
  sd=$(convert "$shot" -colorspace Gray -format "%[fx:standard_deviation]" info:)
  echo "report-smoke: $size: $shot (grey std-dev $sd)"
  if ! awk -v s="$sd" 'BEGIN { exit !(s > 0.05) }'; then
    echo "report-smoke: the report at $size looks blank" >&2
    status=1
  fi
done
# Worst first: the first card in the page is a failure.
first=$(grep -o 'class="card [a-z]*"' "$out/report.html" | head -1)
if [[ "$first" != 'class="card fail"' ]]; then
  echo "report-smoke: the report does not start with a failure ($first)" >&2
  status=1
fi
exit $status
