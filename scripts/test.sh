#!/usr/bin/env bash
# Set up (system packages, Rust, the test servers) and run the whole test suite: unit,
# integration, CLI, GUI (egui_kittest) on the embedded store; the same CLI, review, purge and
# station suites again on the shared store (PostgreSQL + S3, started here on loopback); the
# shared-store concurrency, fault and configuration tests; a real window under Xvfb,
# screenshotted and checked; the review report rendered in headless Chromium; and a short
# fuzz run of the decode and parse paths.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh --gui
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_TERM_COLOR=never
cargo fmt --all -- --check

servers="$(mktemp -d "${TMPDIR:-/tmp}/sameframe-servers.XXXXXX")"
trap 'scripts/shared-servers.sh stop "$servers"; rm -rf "$servers"' EXIT
eval "$(scripts/shared-servers.sh start "$servers")"

# The DICOM validators (dciodvfy, dcmtk, pydicom), and the publication tests' exiftool,
# tesseract, openssl and c2pa-python, and Chromium for the visit summary: required, never
# skipped, in this run.
SAMEFRAME_TEST_PYTHON="$(scripts/dicom-tools.sh)"
export SAMEFRAME_TEST_PYTHON SAMEFRAME_TEST_DICOM_TOOLS=required SAMEFRAME_TEST_PUBLISH_TOOLS=required

echo "== the whole suite, embedded store" >&2
cargo test --locked --workspace
echo "== the CLI, review, purge and station suites again, shared store (PostgreSQL + S3)" >&2
# The suites that open a store through TestStore::new(), again on the shared backend. (The
# shared_store tests already ran on both backends above; legacy_store is an embedded store by
# definition; the analysis and layering tests open no store.)
SAMEFRAME_TEST_BACKEND=shared cargo test --locked -p sameframe \
  --test cli_records --test cli_purge --test cli_lighting --test cli_pose --test review --test app --test tampering --test publish \
  --test treatment
if [[ -x scripts/gui-smoke.sh ]]; then
  scripts/gui-smoke.sh
fi
echo "== the review report in headless Chromium, desk and phone widths" >&2
scripts/report-smoke.sh
echo "== a short fuzz run of the decode and parse paths" >&2
scripts/fuzz.sh "${SAMEFRAME_FUZZ_SECONDS:-30}"
echo "all tests passed"
