#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the decode and parse paths: image decode
# within limits, EXIF, the calibration TOML files, key files, the review's folder walk.
#   scripts/fuzz.sh [SECONDS per target, default 60] [TARGET…]
# Each target starts from its corpus in fuzz/corpus/<target> (kept in the repository); new
# inputs it finds go to the target dir, not the repository. A crash fails the run and leaves
# the input under fuzz/artifacts/<target>/ (add it to the corpus once fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(decode exif calibration key_file review_walk)
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz --version 0.13.2
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
# No sanitizer: the code is safe Rust (unsafe_code is forbidden), and this builds on stable.
for t in "${targets[@]}"; do
  found="$target_dir/corpus/$t"
  mkdir -p "$found"
  echo "== fuzz $t for ${secs}s" >&2
  (cd fuzz && cargo fuzz run --sanitizer none -O --target-dir "$target_dir" "$t" \
      "$found" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=1024 -max_len=262144 \
      -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|INFO: seed)|ERROR|panicked|SUMMARY|Test unit written" >&2)
done
echo "fuzz: no crash in ${#targets[@]} target(s)" >&2
